import re,statistics,collections,sys
labels=[l.strip() for l in open('labels.txt')]
def totals(db):
    out={}
    for i in range(1,len(labels)+1):
        f='cg/%s/out.%d'%(db,i+2)
        s=open(f).read()
        m=re.search(r'^(?:summary|totals): (\d+)',s,re.M)
        out[i]=int(m.group(1))
    return out
res={}
for db in ['base','head']:
    t=totals(db); per=collections.defaultdict(list); 
    # group move sub-statements
    for i,l in enumerate(labels,1):
        key=l.split(':')[0]
        per[key].append(t[i])
    res[db]=per
# sum consecutive move parts (4 per iteration)
for db in res:
    mv=res[db]['placement.move']; res[db]['placement.move']=[sum(mv[k:k+4]) for k in range(0,len(mv),4)]
print("%-20s %12s %12s %10s %8s"%("statement","base","head","delta","%"))
for k in res['base']:
    b=statistics.median(res['base'][k]); h=statistics.median(res['head'][k])
    print("%-20s %12d %12d %10d %7.1f%%"%(k,b,h,h-b,100*(h-b)/b))
