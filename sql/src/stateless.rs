//! Refuses queries that need state across rows, naming the construct and why.
//!
//! A sink's SELECT is evaluated one batch at a time with no memory between
//! batches, so anything whose answer depends on other rows — aggregates, joins,
//! windows, ordering, limits, de-duplication, set operations, subqueries — cannot
//! be honoured and is refused at CREATE time rather than silently giving
//! per-batch answers.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, GroupByExpr, Query, Select, SetExpr, Spanned, TableFactor, Visit, Visitor};

use crate::error::{Location, Result, SqlError};

/// Aggregate function names DataFusion and common SQL know.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "median",
    "approx_distinct",
    "approx_median",
    "approx_percentile_cont",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "first_value",
    "last_value",
    "corr",
    "covar",
    "covar_pop",
    "covar_samp",
    "grouping",
    "listagg",
    "percentile_cont",
];

fn refuse(what: &str, why: &str, loc: Location) -> SqlError {
    SqlError::invalid(
        format!(
            "{what} is not supported in a pipeline: {why}. A sink's SELECT runs on each batch independently (projections, filters, scalar functions, CASE, casts)"
        ),
        Some(loc),
    )
}

/// What the query reads from, after the checks.
#[derive(Debug, Clone)]
pub struct QueryShape {
    /// The single source name in FROM; `None` for `SELECT expr` without FROM.
    pub source: Option<(String, Location)>,
    /// `LIMIT n`, when allowed (console previews).
    pub limit: Option<u64>,
}

/// Checks a query is stateless. `allow_limit` is for console previews.
pub fn check(query: &Query, allow_limit: bool) -> Result<QueryShape> {
    let loc = |s: sqlparser::tokenizer::Span| Location::from(s.start);
    let qloc = loc(query.span());
    if let Some(with) = &query.with {
        return Err(refuse(
            "WITH (common table expressions)",
            "a pipeline reads exactly one source",
            loc(with.span()),
        ));
    }
    if let Some(order) = &query.order_by {
        return Err(refuse(
            "ORDER BY",
            "ordering needs every row of the stream before the first is emitted",
            loc(order.span()),
        ));
    }
    let mut limit = None;
    if let Some(lc) = &query.limit_clause {
        if !allow_limit {
            return Err(refuse(
                "LIMIT",
                "a pipeline has no end to count to; LIMIT is for console previews",
                loc(lc.span()),
            ));
        }
        let text = lc.to_string();
        let n = text
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.trim_end_matches(',').parse::<u64>().ok());
        if text.to_ascii_uppercase().contains("OFFSET") || n.is_none() {
            return Err(SqlError::invalid(
                "a preview takes LIMIT <n> with a constant n and no OFFSET",
                Some(loc(lc.span())),
            ));
        }
        limit = n;
    }
    if let Some(f) = &query.fetch {
        return Err(refuse("FETCH", "a pipeline has no end to count to", loc(f.span())));
    }
    let select = match query.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { op, .. } => {
            return Err(refuse(
                &format!("{op}"),
                "combining queries needs to see the other query's rows",
                qloc,
            ));
        }
        SetExpr::Query(_) => {
            return Err(refuse(
                "a parenthesised subquery",
                "a pipeline reads exactly one source",
                qloc,
            ));
        }
        SetExpr::Values(_) => return Err(refuse("VALUES", "a pipeline reads from a source", qloc)),
        _ => {
            return Err(SqlError::invalid(
                "only SELECT … FROM source [WHERE …] is supported",
                Some(qloc),
            ));
        }
    };
    check_select(select)?;
    let source = match select.from.as_slice() {
        [] => None,
        [one] => {
            if let Some(j) = one.joins.first() {
                return Err(refuse(
                    "JOIN",
                    "joining needs to keep the other side's rows",
                    loc(j.span()),
                ));
            }
            match &one.relation {
                TableFactor::Table { name, args: None, .. } => Some((name.to_string(), loc(name.span()))),
                TableFactor::Derived { .. } => {
                    return Err(refuse(
                        "a subquery in FROM",
                        "a pipeline reads exactly one source",
                        loc(one.relation.span()),
                    ));
                }
                other => {
                    return Err(SqlError::invalid(
                        format!("FROM must name a source, found {other}"),
                        Some(loc(other.span())),
                    ));
                }
            }
        }
        [_, second, ..] => {
            return Err(refuse(
                "a second table in FROM (an implicit JOIN)",
                "joining needs to keep the other side's rows",
                loc(second.span()),
            ));
        }
    };
    Ok(QueryShape { source, limit })
}

fn check_select(select: &Select) -> Result<()> {
    let loc = |s: sqlparser::tokenizer::Span| Location::from(s.start);
    if select.distinct.is_some() {
        return Err(refuse(
            "DISTINCT",
            "de-duplication needs to remember every row seen",
            loc(select.span()),
        ));
    }
    match &select.group_by {
        GroupByExpr::All(_) => {
            return Err(refuse(
                "GROUP BY",
                "grouping needs to see every row of a group",
                loc(select.span()),
            ));
        }
        GroupByExpr::Expressions(exprs, _) if !exprs.is_empty() => {
            return Err(refuse(
                "GROUP BY",
                "grouping needs to see every row of a group",
                loc(exprs[0].span()),
            ));
        }
        _ => {}
    }
    if let Some(h) = &select.having {
        return Err(refuse(
            "HAVING",
            "it filters groups, which need every row of a group",
            loc(h.span()),
        ));
    }
    if !select.named_window.is_empty() {
        return Err(refuse(
            "WINDOW",
            "window functions need neighbouring rows",
            loc(select.span()),
        ));
    }
    if let Some(q) = &select.qualify {
        return Err(refuse(
            "QUALIFY",
            "it filters window results, which need neighbouring rows",
            loc(q.span()),
        ));
    }
    let mut v = ExprCheck { error: None };
    let _ = select.projection.visit(&mut v);
    if let Some(sel) = &select.selection {
        let _ = sel.visit(&mut v);
    }
    match v.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct ExprCheck {
    error: Option<SqlError>,
}

impl Visitor for ExprCheck {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        let loc = Location::from(expr.span().start);
        let err = match expr {
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => Some(refuse(
                "a subquery",
                "a pipeline reads exactly one source, one batch at a time",
                loc,
            )),
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_lowercase();
                if f.over.is_some() {
                    Some(refuse(
                        &format!("window function {name}(…) OVER"),
                        "window functions need neighbouring rows",
                        loc,
                    ))
                } else if AGGREGATES.contains(&name.as_str()) {
                    Some(refuse(
                        &format!("aggregate function {name}(…)"),
                        "aggregating needs every row of the stream",
                        loc,
                    ))
                } else {
                    None
                }
            }
            _ => None,
        };
        match err {
            Some(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    }
}
