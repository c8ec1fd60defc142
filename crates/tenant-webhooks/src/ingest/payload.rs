//! The delivery body of an ingested event, written straight from the request's fields.
//!
//! The body is what it always was — `{"data","id","timestamp","type"}` with keys in sorted order
//! (serde_json's map order), `data` being the event's own fields with the identifiers it was
//! attributed by and `tenantId` set over any same-named field — but serialised without first
//! copying the event's data into a `serde_json::Value` tree: that copy and its drop were a
//! third of the ingest writer's instructions per event.

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::{Map, Value};

/// A value of `data`: one of the event's own, or a string we set.
enum Field<'a> {
    Own(&'a Value),
    Set(&'a str),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Own(v) => v.serialize(s),
            Field::Set(v) => s.serialize_str(v),
        }
    }
}

/// `data`: the event's fields, overridden by `set`, in key order.
struct Data<'a> {
    own: &'a Map<String, Value>,
    set: &'a [(&'static str, Option<&'a str>)],
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let set = self.set.iter().filter_map(|(k, v)| v.map(|v| (*k, v)));
        let mut fields: Vec<(&str, Field<'_>)> = self
            .own
            .iter()
            .filter(|(k, _)| {
                !self
                    .set
                    .iter()
                    .any(|(s, v)| v.is_some() && *s == k.as_str())
            })
            .map(|(k, v)| (k.as_str(), Field::Own(v)))
            .chain(set.map(|(k, v)| (k, Field::Set(v))))
            .collect();
        fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (k, v) in &fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The whole body.
pub(crate) struct Body<'a> {
    /// The event's type.
    pub event_type: &'a str,
    /// `evt_…`.
    pub id: &'a str,
    /// RFC 3339 with milliseconds.
    pub timestamp: &'a str,
    /// The event's own fields.
    pub own: &'a Map<String, Value>,
    /// Fields set over them (`None`: not set).
    pub set: &'a [(&'static str, Option<&'a str>)],
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = s.serialize_struct("Body", 4)?;
        body.serialize_field(
            "data",
            &Data {
                own: self.own,
                set: self.set,
            },
        )?;
        body.serialize_field("id", self.id)?;
        body.serialize_field("timestamp", self.timestamp)?;
        body.serialize_field("type", self.event_type)?;
        body.end()
    }
}

impl Body<'_> {
    /// The JSON text.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_is_what_the_value_tree_gave() {
        let own = json!({"text": "hi", "channel": "old", "z": [1, {"b": 2, "a": 1}], "a": null});
        let own = own.as_object().unwrap();
        let set = [
            ("sessionKey", None),
            ("channel", Some("telegram")),
            ("accountId", Some("tenant-1")),
            ("tenantId", Some("t\"1")),
        ];
        let body = Body {
            event_type: "message.received",
            id: "evt_1",
            timestamp: "2026-11-28T10:00:00.000Z",
            own,
            set: &set,
        };
        let mut data = own.clone();
        for (k, v) in set {
            if let Some(v) = v {
                data.insert(k.into(), Value::String(v.into()));
            }
        }
        let expected = json!({
            "type": "message.received", "id": "evt_1",
            "timestamp": "2026-11-28T10:00:00.000Z", "data": data,
        });
        assert_eq!(body.to_json().unwrap(), expected.to_string());
    }
}
