//! SELECT → DataFusion logical plan → type-coerced expressions → `PhysicalExpr`s.
//!
//! DataFusion's SQL planner resolves names and functions against a one-table
//! catalog (the source), its analyzer inserts the casts type coercion needs, and
//! the plan's Projection and Filter expressions are compiled once into physical
//! expressions. The physical-plan layer of DataFusion is never involved.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{DFSchema, DataFusionError, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{AggregateUDF, Expr, HigherOrderUDF, LogicalPlan, ScalarUDF, TableSource, WindowUDF};
use datafusion_optimizer::Analyzer;
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::create_physical_expr;
use datafusion_sql::planner::SqlToRel;
use sqlparser::ast::{Query, Statement as SqlStatement};

use crate::error::{Location, Result, SqlError};
use crate::transform::CompiledTransform;

/// DataFusion's scalar functions plus Quiver's, by name and alias.
static FUNCTIONS: LazyLock<HashMap<String, Arc<ScalarUDF>>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for f in datafusion_functions::all_default_functions()
        .into_iter()
        .chain(datafusion_functions_nested::all_default_nested_functions())
        .chain(quiver_udf::functions())
    {
        for alias in f.aliases() {
            map.insert(alias.clone(), Arc::clone(&f));
        }
        map.insert(f.name().to_string(), f);
    }
    map
});

fn config() -> ConfigOptions {
    let mut c = ConfigOptions::default();
    c.sql_parser.map_string_types_to_utf8view = false;
    c.sql_parser.collect_spans = true;
    c.sql_parser.enable_ident_normalization = true;
    c
}

struct Provider {
    tables: HashMap<String, Arc<dyn TableSource>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    options: ConfigOptions,
}

impl Provider {
    fn new(tables: HashMap<String, Arc<dyn TableSource>>) -> Self {
        Self {
            tables,
            planners: vec![
                Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
                Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
                Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
                Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
                Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            ],
            options: config(),
        }
    }
}

impl ContextProvider for Provider {
    fn get_table_source(&self, name: TableReference) -> datafusion_common::Result<Arc<dyn TableSource>> {
        self.tables
            .get(name.table())
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("unknown source '{name}'")))
    }
    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }
    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        FUNCTIONS.get(name).cloned()
    }
    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }
    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }
    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }
    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }
    fn options(&self) -> &ConfigOptions {
        &self.options
    }
    fn udf_names(&self) -> Vec<String> {
        FUNCTIONS.keys().cloned().collect()
    }
    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Turns a DataFusion planning error into a located SQL error.
pub(crate) fn plan_error(e: DataFusionError, fallback: Location) -> SqlError {
    let loc = e
        .diagnostic()
        .and_then(|d| d.span)
        .map(|s| Location {
            line: s.start.line,
            column: s.start.column,
        })
        .filter(|l| l.line > 0)
        .unwrap_or(fallback);
    let full = e.strip_backtrace();
    // Analyzer errors arrive as "<rule>\ncaused by\n<cause>": the cause is what the user needs.
    let msg = full.rsplit("caused by\n").next().unwrap_or(&full);
    let msg = msg
        .replace("Error during planning: ", "")
        .replace("Schema error: ", "")
        .trim()
        .to_string();
    SqlError::invalid(msg, Some(loc))
}

/// Compiles a stateless SELECT over `source` (or over no table for `SELECT expr`).
/// `query` must already have passed [`crate::stateless::check`] with any preview
/// LIMIT removed.
/// `source` is (name, columns, how many leading columns were declared): the
/// rest are connector metadata, which `SELECT *` leaves out.
pub fn compile_query(
    query: &Query,
    source: Option<(&str, &SchemaRef, usize)>,
    at: Location,
) -> Result<CompiledTransform> {
    let mut tables: HashMap<String, Arc<dyn TableSource>> = HashMap::new();
    let mut query = query.clone();
    if let Some((name, schema, declared)) = source {
        tables.insert(name.to_string(), Arc::new(LogicalTableSource::new(Arc::clone(schema))));
        if declared < schema.fields().len() {
            expand_wildcards(&mut query, &schema.fields()[..declared]);
        }
    }
    let query = &query;
    let provider = Provider::new(tables);
    let planner = SqlToRel::new(&provider);
    let plan = planner
        .sql_statement_to_plan(SqlStatement::Query(Box::new(query.clone())))
        .map_err(|e| plan_error(e, at))?;
    let plan = Analyzer::new()
        .execute_and_check(plan, provider.options(), |_, _| {})
        .map_err(|e| plan_error(e, at))?;

    let LogicalPlan::Projection(projection) = &plan else {
        return Err(SqlError::invalid(
            format!("unexpected query plan: {}", plan.display()),
            Some(at),
        ));
    };
    let mut filter: Option<(Expr, Arc<DFSchema>)> = None;
    let mut node = projection.input.as_ref();
    loop {
        match node {
            LogicalPlan::Filter(f) => {
                if filter.is_some() {
                    return Err(SqlError::invalid("more than one WHERE clause in the plan", Some(at)));
                }
                filter = Some((f.predicate.clone(), Arc::clone(f.input.schema())));
                node = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
            LogicalPlan::TableScan(_) | LogicalPlan::EmptyRelation(_) => break,
            other => {
                return Err(SqlError::invalid(
                    format!(
                        "this query needs a '{}' step, which a stateless pipeline cannot run",
                        other.display()
                    ),
                    Some(at),
                ));
            }
        }
    }
    let props = ExecutionProps::new();
    let ctx = PhysicalPlanningContext::default();
    let input_schema = projection.input.schema();
    // Simplify first: some functions (coalesce, nvl, …) only exist as rewrites.
    // No query start time is set, so now() is not frozen at planning time.
    let compile = |expr: &Expr, schema: &Arc<DFSchema>| {
        let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_schema(Arc::clone(schema)).build());
        let expr = simplifier.simplify(expr.clone())?;
        create_physical_expr(&expr, schema, &props, &ctx)
    };
    let filter = filter
        .map(|(expr, schema)| compile(&expr, &schema))
        .transpose()
        .map_err(|e| plan_error(e, at))?;
    let projections = projection
        .expr
        .iter()
        .map(|e| compile(e, input_schema))
        .collect::<datafusion_common::Result<Vec<_>>>()
        .map_err(|e| plan_error(e, at))?;
    let output: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let input: SchemaRef = match source {
        Some((_, s, _)) => Arc::clone(s),
        None => Arc::new(arrow::datatypes::Schema::empty()),
    };
    Ok(CompiledTransform::new(input, output, filter, projections))
}

/// Replaces `*` and `source.*` by the declared columns, so metadata columns only
/// appear when named.
fn expand_wildcards(query: &mut Query, declared: &[FieldRef]) {
    use sqlparser::ast::{Expr as SqlExpr, Ident, SelectItem, SetExpr};
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut items = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match item {
            SelectItem::Wildcard(opts) if is_plain(&opts) => {
                items.extend(
                    declared
                        .iter()
                        .map(|f| SelectItem::UnnamedExpr(SqlExpr::Identifier(Ident::with_quote('"', f.name())))),
                );
            }
            SelectItem::QualifiedWildcard(kind, opts) if is_plain(&opts) => match kind {
                sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(table) => {
                    items.extend(declared.iter().map(|f| {
                        let mut parts: Vec<Ident> = table.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
                        parts.push(Ident::with_quote('"', f.name()));
                        SelectItem::UnnamedExpr(SqlExpr::CompoundIdentifier(parts))
                    }));
                }
                other => items.push(SelectItem::QualifiedWildcard(other, opts)),
            },
            other => items.push(other),
        }
    }
    select.projection = items;
}

fn is_plain(opts: &sqlparser::ast::WildcardAdditionalOptions) -> bool {
    opts.opt_ilike.is_none()
        && opts.opt_exclude.is_none()
        && opts.opt_except.is_none()
        && opts.opt_replace.is_none()
        && opts.opt_rename.is_none()
}

/// Converts `CREATE SOURCE` column definitions to an Arrow schema with DataFusion's
/// type mapping, except that a plain `TIMESTAMP` is microseconds (what Parquet and
/// most databases use) rather than nanoseconds.
pub fn columns_to_schema(columns: &[sqlparser::ast::ColumnDef], at: Location) -> Result<SchemaRef> {
    let provider = Provider::new(HashMap::new());
    let planner = SqlToRel::new(&provider);
    let schema = planner.build_schema(columns.to_vec()).map_err(|e| plan_error(e, at))?;
    let mut seen = std::collections::HashSet::new();
    let mut fields: Vec<FieldRef> = Vec::with_capacity(columns.len());
    for (def, field) in columns.iter().zip(schema.fields()) {
        if !seen.insert(field.name().clone()) {
            return Err(SqlError::invalid(
                format!("column '{}' is declared twice", field.name()),
                Some(def.name.span.start.into()),
            ));
        }
        if field.name().starts_with('_') {
            return Err(SqlError::invalid(
                format!(
                    "column names starting with '_' are reserved for connector metadata ('{}')",
                    field.name()
                ),
                Some(def.name.span.start.into()),
            ));
        }
        let plain_timestamp = matches!(def.data_type, sqlparser::ast::DataType::Timestamp(None, _));
        let dt = match field.data_type() {
            DataType::Timestamp(_, tz) if plain_timestamp => {
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, tz.clone())
            }
            other => other.clone(),
        };
        fields.push(Arc::new(Field::new(field.name(), dt, field.is_nullable())));
    }
    Ok(Arc::new(arrow::datatypes::Schema::new(fields)))
}

/// A SQL-style name for an Arrow type, for DESCRIBE and EXPLAIN.
pub fn sql_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(tz)) => format!("TIMESTAMP WITH TIME ZONE ({tz})"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Struct(fields) => format!(
            "STRUCT<{}>",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::List(f) | DataType::LargeList(f) => format!("{}[]", sql_type_name(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}
