import sys
# data setup (run through psql, not measured)
setup = []
setup.append("INSERT INTO gateways (id,name,kind,capacity,created_at,updated_at) VALUES ('aaaaaaaa-0000-0000-0000-000000000000','a','shared',100000,now(),now()),('bbbbbbbb-0000-0000-0000-000000000000','b','shared',100000,now(),now());")
setup.append("INSERT INTO tenants (id,name,slug,account_id,agent_id,plan,status,created_at,updated_at) SELECT 't'||i,'T'||i,'s'||i,'acc'||i,'ag'||i,'free','active',now(),now() FROM generate_series(1,1000) i;")
setup.append("INSERT INTO tenant_placements (tenant_id,gateway_id,state,updated_at) SELECT 't'||i, CASE WHEN i%2=0 THEN 'aaaaaaaa-0000-0000-0000-000000000000' ELSE 'bbbbbbbb-0000-0000-0000-000000000000' END,'placed',now() FROM generate_series(1,1000) i;")
setup.append("INSERT INTO channels (id,tenant_id,kind,enabled,credentials,created_at,updated_at) SELECT 'c'||i,'t'||i,'discord',true,'x',now(),now() FROM generate_series(1,1000) i;")
open('setup.sql','w').write("\n".join(setup)+"\n")
w = []
labels = []
def st(label, sql):
    labels.append(label); w.append(sql)
for it in range(10):
    ids = ",".join("'t%d'" % (it*50+j+1) for j in range(50))
    vals = ",".join("('n%d_%d','N','n%d_%d','na%d_%d','ng%d_%d','free','active',now(),now())" % ((it,j)*4) for j in range(50))
    st("tenants.create50", "INSERT INTO tenants (id,name,slug,account_id,agent_id,plan,status,created_at,updated_at) VALUES %s" % vals)
    cvals = ",".join("('s%d','t%d','slack',true,'x',now(),now())" % (it*50+j+1, it*50+j+1) for j in range(50))
    st("channels.create50", "INSERT INTO channels (id,tenant_id,kind,enabled,credentials,created_at,updated_at) VALUES %s" % cvals)
    st("channels.update50", "UPDATE channels SET updated_at = now() WHERE kind = 'slack' AND tenant_id IN (%s)" % ids)
    st("channels.create1", "INSERT INTO channels (id,tenant_id,kind,enabled,credentials,created_at,updated_at) VALUES ('w%d','t%d','whatsapp',true,'x',now(),now())" % (it, 600+it))
    st("channels.update1", "UPDATE channels SET updated_at = now() WHERE id = 'c%d'" % (700+it))
    st("tenants.update1", "UPDATE tenants SET updated_at = now() WHERE id = 't%d'" % (800+it))
    st("placement.move:begin", "BEGIN")
    st("placement.move:lock", "SELECT pg_advisory_xact_lock(2512250001)")
    st("placement.move:update", "UPDATE tenant_placements SET state = 'moving', target_gateway_id = 'aaaaaaaa-0000-0000-0000-000000000000', moving_since = now(), updated_at = now() WHERE tenant_id = 't%d'" % (901+2*it))
    st("placement.move:commit", "COMMIT")
    st("channels.delete50", "DELETE FROM channels WHERE kind = 'slack' AND tenant_id IN (%s)" % ids)
open('work.sql','w').write("\n".join(w)+"\n")
open('labels.txt','w').write("\n".join(labels)+"\n")
