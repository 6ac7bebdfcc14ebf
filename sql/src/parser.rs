//! Quiver's statements, parsed with sqlparser.
//!
//! [`parse`] walks a script statement by statement. Quiver's own forms
//! (`CREATE SOURCE`, `CREATE SINK`, `DROP SOURCE|SINK`, `SHOW …`, `DESCRIBE`,
//! `EXPLAIN CREATE SINK`) are recognised by their leading words and built from
//! sqlparser's parsing primitives (`parse_columns`, `parse_query`, tokens with
//! spans); everything else is handed to sqlparser whole. A statement that fails to
//! parse is reported and skipped up to the next `;`, so one run reports every
//! problem in a file.

use sqlparser::ast::{ColumnDef, Ident, ObjectName, Query};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Location, Result, SqlError};

/// One `key = 'value'` of a `WITH (…)` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionEntry {
    pub key: String,
    pub value: String,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub name: Ident,
    pub columns: Vec<ColumnDef>,
    pub options: Vec<OptionEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateSink {
    pub name: Ident,
    pub options: Vec<OptionEntry>,
    /// `AS SELECT …`
    pub query: Option<Box<Query>>,
    /// `FROM source` (copy as is)
    pub from: Option<ObjectName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Source,
    Sink,
}

impl ObjectKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectKind::Source => "source",
            ObjectKind::Sink => "sink",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowKind {
    Sources,
    Sinks,
    Connectors,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateSource(CreateSource),
    CreateSink(CreateSink),
    Drop {
        kind: ObjectKind,
        name: Ident,
        if_exists: bool,
    },
    Show(ShowKind),
    Describe(Ident),
    Explain(CreateSink),
    /// A plain query: console previews (`SELECT … FROM source LIMIT n`).
    Query(Box<Query>),
}

/// A statement with where it starts and its own text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    pub location: Location,
    pub text: String,
}

/// Parses a whole script. Returns the statements that parsed and an error for each that did not.
pub fn parse(sql: &str) -> (Vec<ParsedStatement>, Vec<SqlError>) {
    let dialect = GenericDialect {};
    let mut parser = match Parser::new(&dialect).try_with_sql(sql) {
        Ok(p) => p,
        Err(e) => return (Vec::new(), vec![tokenizer_error(e)]),
    };
    let index = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let start = parser.peek_token();
        if start.token == Token::EOF {
            break;
        }
        let start_loc: Location = start.span.start.into();
        match parse_statement(&mut parser) {
            Ok(statement) => {
                let end = parser.peek_token();
                if !matches!(end.token, Token::SemiColon | Token::EOF) {
                    errors.push(SqlError::syntax(
                        format!("expected ';' after the statement, found {}", end.token),
                        Some(end.span.start.into()),
                    ));
                    skip_statement(&mut parser);
                    continue;
                }
                let end_byte = if end.token == Token::EOF {
                    sql.len()
                } else {
                    index.byte(end.span.start.into())
                };
                let text = sql[index.byte(start_loc)..end_byte].trim().to_string();
                out.push(ParsedStatement {
                    statement,
                    location: start_loc,
                    text,
                });
            }
            Err(e) => {
                errors.push(e);
                skip_statement(&mut parser);
            }
        }
    }
    (out, errors)
}

/// Parses exactly one statement (the console, the REST API).
pub fn parse_one(sql: &str) -> Result<ParsedStatement> {
    let (mut stmts, mut errors) = parse(sql);
    if let Some(e) = errors.drain(..).next() {
        return Err(e);
    }
    match stmts.len() {
        1 => Ok(stmts.remove(0)),
        0 => Err(SqlError::syntax("no statement given", None)),
        n => Err(SqlError::syntax(
            format!("expected one statement, found {n}"),
            stmts.get(1).map(|s| s.location),
        )),
    }
}

fn skip_statement(parser: &mut Parser<'_>) {
    loop {
        let t = parser.next_token();
        if matches!(t.token, Token::SemiColon | Token::EOF) {
            break;
        }
    }
}

fn tokenizer_error(e: ParserError) -> SqlError {
    let msg = e.to_string();
    // sqlparser appends " at Line: L, Column: C"; lift it into a location.
    let loc = msg.rsplit_once(" at Line: ").and_then(|(_, rest)| {
        let (l, c) = rest.split_once(", Column: ")?;
        Some(Location {
            line: l.trim().parse().ok()?,
            column: c
                .trim()
                .trim_end_matches(|ch: char| !ch.is_ascii_digit())
                .parse()
                .ok()?,
        })
    });
    let msg = msg.split(" at Line: ").next().unwrap_or(&msg).to_string();
    let msg = msg.strip_prefix("sql parser error: ").unwrap_or(&msg).to_string();
    SqlError::syntax(msg, loc)
}

fn word(t: &TokenWithSpan) -> Option<String> {
    match &t.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn peek_word(parser: &Parser<'_>, n: usize) -> Option<String> {
    word(&parser.peek_nth_token(n))
}

fn wrap(parser: &Parser<'_>, e: ParserError) -> SqlError {
    let mut err = tokenizer_error(e);
    if err.location.is_none() {
        err.location = Some(parser.peek_token().span.start.into());
    }
    err
}

fn parse_statement(parser: &mut Parser<'_>) -> Result<Statement> {
    let first = peek_word(parser, 0);
    let second = peek_word(parser, 1);
    match (first.as_deref(), second.as_deref()) {
        (Some("CREATE"), Some("SOURCE")) => {
            parser.next_token();
            parser.next_token();
            parse_create_source(parser).map(Statement::CreateSource)
        }
        (Some("CREATE"), Some("SINK")) => {
            parser.next_token();
            parser.next_token();
            parse_create_sink(parser).map(Statement::CreateSink)
        }
        (Some("EXPLAIN"), Some("CREATE")) if peek_word(parser, 2).as_deref() == Some("SINK") => {
            for _ in 0..3 {
                parser.next_token();
            }
            parse_create_sink(parser).map(Statement::Explain)
        }
        (Some("DROP"), Some(kind @ ("SOURCE" | "SINK"))) => {
            let kind = if kind == "SOURCE" {
                ObjectKind::Source
            } else {
                ObjectKind::Sink
            };
            parser.next_token();
            parser.next_token();
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = parser.parse_identifier().map_err(|e| wrap(parser, e))?;
            Ok(Statement::Drop { kind, name, if_exists })
        }
        (Some("SHOW"), Some(kind @ ("SOURCES" | "SINKS" | "CONNECTORS"))) => {
            let kind = match kind {
                "SOURCES" => ShowKind::Sources,
                "SINKS" => ShowKind::Sinks,
                _ => ShowKind::Connectors,
            };
            parser.next_token();
            parser.next_token();
            Ok(Statement::Show(kind))
        }
        (Some("DESCRIBE" | "DESC"), _) => {
            parser.next_token();
            if matches!(peek_word(parser, 0).as_deref(), Some("SOURCE" | "SINK")) && peek_word(parser, 1).is_some() {
                parser.next_token();
            }
            let name = parser.parse_identifier().map_err(|e| wrap(parser, e))?;
            Ok(Statement::Describe(name))
        }
        (Some("SELECT" | "WITH" | "VALUES"), _) => {
            parser.parse_query().map(Statement::Query).map_err(|e| wrap(parser, e))
        }
        (Some("CREATE"), Some(other)) => {
            let t = parser.peek_nth_token(1);
            Err(SqlError::syntax(
                format!("CREATE {other} is not a Quiver statement; use CREATE SOURCE or CREATE SINK"),
                Some(t.span.start.into()),
            ))
        }
        _ => {
            let t = parser.peek_token();
            if t.token == Token::LParen {
                return parser.parse_query().map(Statement::Query).map_err(|e| wrap(parser, e));
            }
            Err(SqlError::syntax(
                format!(
                    "expected a statement (CREATE SOURCE, CREATE SINK, DROP, SHOW, DESCRIBE, EXPLAIN or SELECT), found {}",
                    t.token
                ),
                Some(t.span.start.into()),
            ))
        }
    }
}

fn parse_create_source(parser: &mut Parser<'_>) -> Result<CreateSource> {
    let name = parser.parse_identifier().map_err(|e| wrap(parser, e))?;
    // A source whose rows carry whole records (Debezium events) declares none;
    // the catalog checks that its connector says so.
    if parser.peek_keyword(Keyword::WITH) {
        let options = parse_with_options(parser, true)?;
        return Ok(CreateSource {
            name,
            columns: Vec::new(),
            options,
        });
    }
    if parser.peek_token().token != Token::LParen {
        let t = parser.peek_token();
        return Err(SqlError::syntax(
            format!(
                "expected the column list '(name TYPE, …)' or WITH after CREATE SOURCE {name}, found {}",
                t.token
            ),
            Some(t.span.start.into()),
        ));
    }
    let (columns, constraints) = parser.parse_columns().map_err(|e| wrap(parser, e))?;
    if let Some(c) = constraints.first() {
        return Err(SqlError::invalid(
            format!("table constraints are not supported in CREATE SOURCE: {c}"),
            None,
        ));
    }
    if columns.is_empty() {
        return Err(SqlError::invalid(
            format!("source {name} declares no columns"),
            Some(name.span.start.into()),
        ));
    }
    let options = parse_with_options(parser, true)?;
    Ok(CreateSource { name, columns, options })
}

fn parse_create_sink(parser: &mut Parser<'_>) -> Result<CreateSink> {
    let name = parser.parse_identifier().map_err(|e| wrap(parser, e))?;
    if parser.parse_keyword(Keyword::FROM) {
        let from = parser.parse_object_name(false).map_err(|e| wrap(parser, e))?;
        let options = parse_with_options(parser, true)?;
        return Ok(CreateSink {
            name,
            options,
            query: None,
            from: Some(from),
        });
    }
    let options = parse_with_options(parser, true)?;
    let t = parser.peek_token();
    if !parser.parse_keyword(Keyword::AS) {
        return Err(SqlError::syntax(
            format!(
                "expected AS SELECT … after the options of sink {name} (or CREATE SINK {name} FROM source WITH (…)), found {}",
                t.token
            ),
            Some(t.span.start.into()),
        ));
    }
    let query = parser.parse_query().map_err(|e| wrap(parser, e))?;
    Ok(CreateSink {
        name,
        options,
        query: Some(query),
        from: None,
    })
}

/// `WITH ( key = value, … )`; keys are quoted strings or dotted words, values literals.
fn parse_with_options(parser: &mut Parser<'_>, required: bool) -> Result<Vec<OptionEntry>> {
    let t = parser.peek_token();
    if !parser.parse_keyword(Keyword::WITH) {
        if required {
            return Err(SqlError::syntax(
                format!("expected WITH (connector = '…', …), found {}", t.token),
                Some(t.span.start.into()),
            ));
        }
        return Ok(Vec::new());
    }
    parser.expect_token(&Token::LParen).map_err(|e| wrap(parser, e))?;
    let mut out: Vec<OptionEntry> = Vec::new();
    if parser.consume_token(&Token::RParen) {
        return Ok(out);
    }
    loop {
        let start = parser.peek_token();
        let location: Location = start.span.start.into();
        let mut key = String::new();
        loop {
            let t = parser.next_token();
            match t.token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) if key.is_empty() => {
                    key = s;
                    break;
                }
                Token::Word(w) => key.push_str(&w.value),
                Token::Number(n, _) => key.push_str(&n),
                other => {
                    return Err(SqlError::syntax(
                        format!("expected an option name, found {other}"),
                        Some(t.span.start.into()),
                    ));
                }
            }
            // Dotted keys: rows.total, fields.id.kind — the tokenizer may fold ".total" into a number-like token.
            let next = parser.peek_token();
            match &next.token {
                Token::Period => {
                    parser.next_token();
                    key.push('.');
                }
                Token::Number(n, _) if n.starts_with('.') => {
                    parser.next_token();
                    key.push_str(n);
                }
                _ => break,
            }
        }
        let key = key.to_ascii_lowercase();
        let eq = parser.next_token();
        if eq.token != Token::Eq {
            return Err(SqlError::syntax(
                format!("expected '=' after option '{key}', found {}", eq.token),
                Some(eq.span.start.into()),
            ));
        }
        let v = parser.next_token();
        let value = match v.token {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Minus => match parser.next_token().token {
                Token::Number(n, _) => format!("-{n}"),
                other => {
                    return Err(SqlError::syntax(
                        format!("expected a number after '-', found {other}"),
                        Some(v.span.start.into()),
                    ));
                }
            },
            Token::Word(w) => w.value,
            other => {
                return Err(SqlError::syntax(
                    format!(
                        "expected a value for option '{key}' (a quoted string, number or true/false), found {other}"
                    ),
                    Some(v.span.start.into()),
                ));
            }
        };
        if out.iter().any(|o| o.key == key) {
            return Err(SqlError::invalid(
                format!("option '{key}' is given twice"),
                Some(location),
            ));
        }
        out.push(OptionEntry { key, value, location });
        let sep = parser.next_token();
        match sep.token {
            Token::Comma => {
                if parser.consume_token(&Token::RParen) {
                    break;
                }
            }
            Token::RParen => break,
            other => {
                return Err(SqlError::syntax(
                    format!("expected ',' or ')' in WITH options, found {other}"),
                    Some(sep.span.start.into()),
                ));
            }
        }
    }
    Ok(out)
}

/// Maps line/column locations back to byte offsets in the script.
struct LineIndex {
    starts: Vec<usize>,
    text_len: usize,
    chars: Vec<Vec<usize>>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        // Byte offset of each char per line, as sqlparser columns count chars.
        let chars = starts
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let end = starts.get(i + 1).copied().unwrap_or(text.len());
                text[s..end].char_indices().map(|(o, _)| s + o).collect()
            })
            .collect();
        Self {
            starts,
            text_len: text.len(),
            chars,
        }
    }

    fn byte(&self, loc: Location) -> usize {
        let line = (loc.line.max(1) - 1) as usize;
        let Some(chars) = self.chars.get(line) else {
            return self.text_len;
        };
        let col = (loc.column.max(1) - 1) as usize;
        chars
            .get(col)
            .copied()
            .unwrap_or_else(|| self.starts.get(line + 1).copied().unwrap_or(self.text_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_script_with_comments() {
        let sql = "-- a source\nCREATE SOURCE s (id BIGINT NOT NULL, name TEXT) WITH (connector = 'datagen', rows.total = 10, 'fields.id.kind' = 'sequence');\n/* block */\nCREATE SINK k WITH (connector = 'stdout') AS SELECT id FROM s WHERE id > 1;\nSHOW SINKS;\nDROP SINK IF EXISTS k;";
        let (stmts, errors) = parse(sql);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(stmts.len(), 4);
        let Statement::CreateSource(src) = &stmts[0].statement else {
            panic!("not a source")
        };
        assert_eq!(
            src.options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("connector", "datagen"),
                ("rows.total", "10"),
                ("fields.id.kind", "sequence")
            ]
        );
        assert_eq!(stmts[0].location, Location { line: 2, column: 1 });
        assert!(stmts[1].text.starts_with("CREATE SINK k"));
        assert!(stmts[1].text.ends_with("id > 1"));
    }

    #[test]
    fn reports_every_bad_statement() {
        let (stmts, errors) = parse("CREATE SOURCE s (a INT) WITH x;\nCREATE TABLE t (a INT);\nSHOW SINKS;");
        assert_eq!(stmts.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].location, Some(Location { line: 2, column: 8 }));
    }
}
