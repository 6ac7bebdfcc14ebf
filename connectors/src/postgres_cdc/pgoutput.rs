//! Decoding of the `pgoutput` messages a logical replication stream carries
//! (protocol version 1, text values), as PostgreSQL documents them in "Logical
//! Replication Message Formats". `pgwire-replication` hands over Begin and Commit
//! itself; this reads the rest (Relation, Type, Origin, Insert, Update, Delete,
//! Truncate) without copying values: a [`Value`] borrows the message's bytes.

use std::fmt;

/// A column of a relation, as the Relation message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelColumn {
    pub(crate) name: String,
    /// Part of the replica identity (the key a delete or update names).
    pub(crate) key: bool,
    pub(crate) type_oid: u32,
    /// The type modifier: length, or precision and scale (`-1` when none).
    pub(crate) type_mod: i32,
    /// Catalog facts pgoutput does not carry, read when Debezium events need
    /// them: part of the primary key, and NOT NULL.
    pub(crate) primary: bool,
    pub(crate) not_null: bool,
}

/// A table's shape; sent before the first change of a table in a session and again
/// after its definition changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    pub(crate) id: u32,
    pub(crate) schema: String,
    pub(crate) table: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub(crate) replica_identity: u8,
    pub(crate) columns: Vec<RelColumn>,
}

/// One column's value in a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Null,
    /// A TOASTed value the update did not change, which the WAL does not carry.
    Unchanged,
    Text(&'a [u8]),
}

/// The decoded messages this source acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    Relation(Relation),
    Insert {
        rel: u32,
        new: Vec<Value<'a>>,
    },
    /// `old` is the old key (`K`) or, under `REPLICA IDENTITY FULL`, the whole old
    /// row (`O`); absent when the key did not change.
    Update {
        rel: u32,
        old: Option<Vec<Value<'a>>>,
        new: Vec<Value<'a>>,
    },
    Delete {
        rel: u32,
        old: Vec<Value<'a>>,
    },
    Truncate {
        rels: Vec<u32>,
    },
    /// Type, Origin and anything a newer server adds that changes no row.
    Other(u8),
}

/// A message that does not parse: the stream is not what pgoutput v1 sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed pgoutput message: {}", self.0)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                DecodeError(format!(
                    "{what} needs {n} bytes at offset {}, the message has {}",
                    self.pos,
                    self.buf.len()
                ))
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn i16(&mut self, what: &str) -> Result<i16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self, what: &str) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let len = memchr::memchr(0, rest).ok_or_else(|| DecodeError(format!("{what} is not NUL-terminated")))?;
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Value<'a>>, DecodeError> {
        let n = self.i16("tuple column count")?;
        let mut values = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            values.push(match self.u8("tuple column kind")? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let len = self.u32("value length")? as usize;
                    Value::Text(self.take(len, "value")?)
                }
                b'b' => {
                    return Err(DecodeError(
                        "a binary value: the stream must be started in text mode".into(),
                    ));
                }
                k => return Err(DecodeError(format!("unknown tuple column kind {:?}", k as char))),
            });
        }
        Ok(values)
    }
}

/// Decodes one pgoutput message (the payload of an XLogData).
pub(crate) fn decode(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let tag = r.u8("message type")?;
    match tag {
        b'R' => {
            let id = r.u32("relation id")?;
            let schema = r.cstr("namespace")?;
            let table = r.cstr("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let n = r.i16("column count")?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                let flags = r.u8("column flags")?;
                let name = r.cstr("column name")?;
                let type_oid = r.u32("column type")?;
                let type_mod = r.u32("column type modifier")? as i32;
                columns.push(RelColumn {
                    name,
                    key: flags & 1 == 1,
                    type_oid,
                    type_mod,
                    primary: flags & 1 == 1,
                    not_null: false,
                });
            }
            Ok(Message::Relation(Relation {
                id,
                schema,
                table,
                replica_identity,
                columns,
            }))
        }
        b'I' => {
            let rel = r.u32("relation id")?;
            match r.u8("tuple marker")? {
                b'N' => Ok(Message::Insert { rel, new: r.tuple()? }),
                m => Err(DecodeError(format!("insert: expected 'N', found {:?}", m as char))),
            }
        }
        b'U' => {
            let rel = r.u32("relation id")?;
            let (old, marker) = match r.u8("tuple marker")? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    (Some(old), r.u8("tuple marker")?)
                }
                m => (None, m),
            };
            if marker != b'N' {
                return Err(DecodeError(format!("update: expected 'N', found {:?}", marker as char)));
            }
            Ok(Message::Update {
                rel,
                old,
                new: r.tuple()?,
            })
        }
        b'D' => {
            let rel = r.u32("relation id")?;
            match r.u8("tuple marker")? {
                b'K' | b'O' => Ok(Message::Delete { rel, old: r.tuple()? }),
                m => Err(DecodeError(format!(
                    "delete: expected 'K' or 'O', found {:?}",
                    m as char
                ))),
            }
        }
        b'T' => {
            let n = r.u32("relation count")?;
            let _options = r.u8("truncate options")?;
            let rels = (0..n).map(|_| r.u32("relation id")).collect::<Result<_, _>>()?;
            Ok(Message::Truncate { rels })
        }
        other => Ok(Message::Other(other)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds pgoutput messages for tests.
    #[derive(Default)]
    pub(crate) struct Msg(pub Vec<u8>);

    impl Msg {
        pub(crate) fn tag(t: u8) -> Self {
            Self(vec![t])
        }
        pub(crate) fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        pub(crate) fn i16(mut self, v: i16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub(crate) fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub(crate) fn cstr(mut self, s: &str) -> Self {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        /// A tuple: `Some(text)`, `None` for NULL; `"\u{0}"` for unchanged TOAST.
        pub(crate) fn tuple(mut self, values: &[Option<&str>]) -> Self {
            self = self.i16(values.len() as i16);
            for v in values {
                match v {
                    None => self.0.push(b'n'),
                    Some("\u{0}") => self.0.push(b'u'),
                    Some(t) => {
                        self.0.push(b't');
                        self = self.u32(t.len() as u32);
                        self.0.extend_from_slice(t.as_bytes());
                    }
                }
            }
            self
        }
        /// A Relation message for `schema.table` with `(name, is_key)` columns.
        pub(crate) fn relation(id: u32, schema: &str, table: &str, columns: &[(&str, bool)]) -> Self {
            let mut m = Msg::tag(b'R')
                .u32(id)
                .cstr(schema)
                .cstr(table)
                .u8(b'd')
                .i16(columns.len() as i16);
            for (name, key) in columns {
                m = m.u8(u8::from(*key)).cstr(name).u32(25).u32(u32::MAX);
            }
            m
        }
    }

    #[test]
    fn relation_insert_update_delete_truncate_decode() {
        let rel = Msg::relation(16384, "public", "orders", &[("id", true), ("note", false)]);
        let Message::Relation(r) = decode(&rel.0).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!((r.id, r.schema.as_str(), r.table.as_str()), (16384, "public", "orders"));
        assert_eq!(
            r.columns.iter().map(|c| (c.name.as_str(), c.key)).collect::<Vec<_>>(),
            [("id", true), ("note", false)]
        );

        let ins = Msg::tag(b'I').u32(16384).u8(b'N').tuple(&[Some("1"), None]);
        assert_eq!(
            decode(&ins.0).unwrap(),
            Message::Insert {
                rel: 16384,
                new: vec![Value::Text(b"1"), Value::Null]
            }
        );

        let upd = Msg::tag(b'U')
            .u32(16384)
            .u8(b'K')
            .tuple(&[Some("1"), None])
            .u8(b'N')
            .tuple(&[Some("2"), Some("\u{0}")]);
        assert_eq!(
            decode(&upd.0).unwrap(),
            Message::Update {
                rel: 16384,
                old: Some(vec![Value::Text(b"1"), Value::Null]),
                new: vec![Value::Text(b"2"), Value::Unchanged]
            }
        );
        let upd = Msg::tag(b'U').u32(7).u8(b'N').tuple(&[Some("x")]);
        assert!(matches!(decode(&upd.0).unwrap(), Message::Update { old: None, .. }));

        let del = Msg::tag(b'D').u32(16384).u8(b'O').tuple(&[Some("1"), Some("n")]);
        assert!(matches!(decode(&del.0).unwrap(), Message::Delete { rel: 16384, .. }));

        let tr = Msg::tag(b'T').u32(2).u8(0).u32(1).u32(2);
        assert_eq!(decode(&tr.0).unwrap(), Message::Truncate { rels: vec![1, 2] });
        assert_eq!(decode(b"Yjunk").unwrap(), Message::Other(b'Y'));
    }

    #[test]
    fn truncated_or_foreign_messages_are_errors_not_panics() {
        let ins = Msg::tag(b'I').u32(1).u8(b'N').tuple(&[Some("12345")]);
        for cut in 1..ins.0.len() {
            assert!(decode(&ins.0[..cut]).is_err(), "cut at {cut}");
        }
        let e = decode(&Msg::tag(b'I').u32(1).u8(b'X').0).unwrap_err();
        assert!(e.to_string().contains("expected 'N'"), "{e}");
        let bin = Msg::tag(b'I').u32(1).u8(b'N').i16(1).u8(b'b');
        assert!(decode(&bin.0).unwrap_err().to_string().contains("text mode"));
        assert!(decode(&[]).is_err());
    }
}
