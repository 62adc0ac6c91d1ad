//! Redis replies as the WIT types, the way Spin converts them: arrays and
//! sets flattened, `OK` as a status, doubles and big numbers as text,
//! booleans as 0/1; maps, attributes, verbatim strings and pushes refused.

use super::other;
use crate::bindings::spin::redis::redis::{Error, RedisResult};
use redis::Value;

/// Spin's cap on what the host buffers for one reply.
pub const MAX_REPLY_BYTES: usize = 128 << 20;

/// The flattened reply of `execute`.
pub fn results(value: Value) -> Result<Vec<RedisResult>, Error> {
    let mut results = Vec::new();
    let mut size = 0;
    flatten(value, &mut results, &mut size)?;
    Ok(results)
}

fn flatten(value: Value, into: &mut Vec<RedisResult>, size: &mut usize) -> Result<(), Error> {
    let result = match value {
        Value::Nil => RedisResult::Nil,
        Value::Int(n) => RedisResult::Int64(n),
        Value::Boolean(b) => RedisResult::Int64(i64::from(b)),
        Value::BulkString(bytes) => RedisResult::Binary(bytes),
        Value::SimpleString(text) => RedisResult::Status(text),
        Value::Okay => RedisResult::Status("OK".to_owned()),
        Value::Double(d) => RedisResult::Binary(d.to_string().into_bytes()),
        Value::BigNumber(digits) => RedisResult::Binary(digits),
        Value::Array(values) | Value::Set(values) => {
            return values.into_iter().try_for_each(|v| flatten(v, into, size));
        }
        Value::Map(_) => return Err(unsupported("Redis Map type is not supported")),
        Value::Attribute { .. } => return Err(unsupported("Redis Attribute type is not supported")),
        Value::VerbatimString { .. } => {
            return Err(unsupported("Redis string with format attribute is not supported"));
        }
        Value::Push { .. } => return Err(unsupported("Redis Pub/Sub types are not supported")),
        Value::ServerError(err) => return Err(other(format!("Server error: {err:?}"))),
        unknown => return Err(unexpected(&unknown)),
    };
    *size += std::mem::size_of::<RedisResult>()
        + match &result {
            RedisResult::Binary(bytes) => bytes.len(),
            RedisResult::Status(text) => text.len(),
            RedisResult::Nil | RedisResult::Int64(_) => 0,
        };
    if *size > MAX_REPLY_BYTES {
        return Err(too_large());
    }
    into.push(result);
    Ok(())
}

/// The value of `GET`: nil or bytes.
pub fn optional_bytes(value: Value) -> Result<Option<Vec<u8>>, Error> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) if bytes.len() > MAX_REPLY_BYTES => Err(too_large()),
        Value::BulkString(bytes) => Ok(Some(bytes)),
        Value::SimpleString(text) => Ok(Some(text.into_bytes())),
        Value::Okay => Ok(Some(b"OK".to_vec())),
        other_value => Err(unexpected(&other_value)),
    }
}

/// An integer reply (`INCRBY`).
pub fn integer(value: Value) -> Result<i64, Error> {
    match value {
        Value::Int(n) => Ok(n),
        other_value => Err(unexpected(&other_value)),
    }
}

/// A count (`DEL`, `SADD`, `SREM`).
pub fn count(value: Value) -> Result<u32, Error> {
    match value {
        Value::Int(n) => u32::try_from(n).map_err(|_| other(format!("count {n} out of range"))),
        other_value => Err(unexpected(&other_value)),
    }
}

/// The members of a set, as text (`SMEMBERS`).
pub fn strings(value: Value) -> Result<Vec<String>, Error> {
    let (Value::Array(members) | Value::Set(members)) = value else {
        return Err(unexpected(&value));
    };
    members
        .into_iter()
        .map(|member| match member {
            Value::BulkString(bytes) => {
                String::from_utf8(bytes).map_err(|_| other("a set member is not valid UTF-8"))
            }
            Value::SimpleString(text) => Ok(text),
            other_value => Err(unexpected(&other_value)),
        })
        .collect()
}

fn unsupported(message: &str) -> Error {
    other(format!("Could not convert Redis response: {message}"))
}

fn unexpected(value: &Value) -> Error {
    let mut shown = format!("{value:?}");
    if shown.len() > 200 {
        let mut end = 200;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    other(format!("Response was of incompatible type: {shown}"))
}

fn too_large() -> Error {
    other(format!("query result exceeds limit of {MAX_REPLY_BYTES} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_replies_are_flattened_in_order() {
        let reply = Value::Array(vec![
            Value::Int(1),
            Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Nil]),
            Value::Okay,
            Value::Boolean(true),
            Value::Double(1.5),
        ]);
        let results = results(reply).unwrap();
        assert!(matches!(
            results.as_slice(),
            [
                RedisResult::Int64(1),
                RedisResult::Binary(a),
                RedisResult::Nil,
                RedisResult::Status(ok),
                RedisResult::Int64(1),
                RedisResult::Binary(d),
            ] if a == b"a" && ok == "OK" && d == b"1.5"
        ));
    }

    #[test]
    fn maps_are_refused() {
        let reply = Value::Map(vec![(Value::Int(1), Value::Int(2))]);
        assert!(matches!(results(reply), Err(Error::Other(m)) if m.contains("Map")));
    }

    #[test]
    fn typed_replies_reject_other_shapes() {
        assert_eq!(optional_bytes(Value::Nil).unwrap(), None);
        assert!(integer(Value::BulkString(b"x".to_vec())).is_err());
        assert!(count(Value::Int(-1)).is_err());
        assert_eq!(
            strings(Value::Set(vec![Value::BulkString(b"m".to_vec())])).unwrap(),
            ["m"]
        );
        assert!(strings(Value::Array(vec![Value::BulkString(vec![0xff])])).is_err());
    }
}
