//! Metadata filters: parsing and checking the JSON filter of a query (shared by every driver), and
//! evaluating it against the values metadata indexes hold.
//!
//! Grammar: a non-empty JSON object, compact size ≤ `max_filter_bytes` (< 2048 B), whose keys are
//! ANDed. A key is a metadata-index property (dots reach nested fields); its value is either a
//! scalar (implicit `$eq`) or an object of operators:
//!
//! | operator | operand | matches |
//! |---|---|---|
//! | `$eq`, `$ne` | string, number, boolean or null | equal / not equal |
//! | `$in`, `$nin` | array of those | equal to one / to none |
//! | `$lt`, `$lte`, `$gt`, `$gte` | string or number | ordered values (strings byte-wise) |
//!
//! Only one lower bound (`$gt`/`$gte`) and one upper bound (`$lt`/`$lte`) may share a key; no
//! other operators combine. Every key must name a metadata index and every operand must be of that
//! index's type (or `null` for the equality operators); anything else is [`Error::InvalidFilter`].
//! A property that is absent, `null` or of another type than its index equals `null`, so `$ne` and
//! `$nin` of a value match it and ranges never do.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::limits::{VectorLimits, utf8_prefix};
use crate::metadata::{IndexedRef, IndexedValue};
use crate::types::{MetadataIndex, MetadataIndexType};

/// A parsed filter: every clause must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub clauses: Vec<Clause>,
}

/// One key of a filter and its condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// The metadata-index property, possibly dotted.
    pub key: String,
    pub condition: Condition,
}

/// What the value at a key must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Eq(Operand),
    Ne(Operand),
    In(Vec<Operand>),
    Nin(Vec<Operand>),
    /// At least one bound is present; both are of the same type (number or string).
    Range {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: Operand,
    pub inclusive: bool,
}

/// A scalar operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

const OPERATORS: &str = "$eq, $ne, $in, $nin, $lt, $lte, $gt, $gte";

impl Filter {
    /// Parses and checks the syntax of a filter (not yet against the indexes: see
    /// [`Filter::check_indexed`]).
    pub fn parse(filter: &Value, limits: &VectorLimits) -> Result<Filter> {
        let Value::Object(keys) = filter else {
            return Err(Error::filter(
                "",
                format!("a filter must be a JSON object, not {}", type_name(filter)),
            ));
        };
        let size = serde_json::to_vec(filter).map_err(|e| Error::filter("", e.to_string()))?.len();
        if size > limits.max_filter_bytes {
            return Err(Error::TooLarge { field: "filter", size, limit: limits.max_filter_bytes });
        }
        if keys.is_empty() {
            return Err(Error::filter("", "a filter must have at least one key"));
        }
        let clauses = keys
            .iter()
            .map(|(key, value)| {
                if let Some(problem) = limits.property_problem(key) {
                    return Err(Error::filter(key, problem));
                }
                Ok(Clause { key: key.clone(), condition: parse_condition(key, value)? })
            })
            .collect::<Result<_>>()?;
        Ok(Filter { clauses })
    }

    /// Checks that every key names one of `indexes` and every operand is of that index's type.
    pub fn check_indexed(&self, indexes: &[MetadataIndex]) -> Result<()> {
        for clause in &self.clauses {
            let index = find_index(indexes, &clause.key)?;
            for operand in clause.condition.operands() {
                let fits = matches!(
                    (index.index_type, operand),
                    (_, Operand::Null)
                        | (MetadataIndexType::String, Operand::String(_))
                        | (MetadataIndexType::Number, Operand::Number(_))
                        | (MetadataIndexType::Boolean, Operand::Bool(_))
                );
                if !fits {
                    return Err(Error::filter(
                        &clause.key,
                        format!(
                            "the property is indexed as {}, but the operand {} is {}",
                            index.index_type,
                            operand.to_json(),
                            operand.type_name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the filter against `indexes` and binds each clause to its index's position, with
    /// string operands cut to `string_prefix_bytes` like the indexed values.
    pub fn compile(&self, indexes: &[MetadataIndex], string_prefix_bytes: usize) -> Result<CompiledFilter> {
        self.check_indexed(indexes)?;
        let clauses = self
            .clauses
            .iter()
            .map(|clause| {
                let position = indexes
                    .iter()
                    .position(|i| i.property == clause.key)
                    .ok_or_else(|| Error::filter(&clause.key, "no metadata index on this property"))?;
                Ok((position, clause.condition.with_string_prefix(string_prefix_bytes)))
            })
            .collect::<Result<_>>()?;
        Ok(CompiledFilter { clauses })
    }
}

fn find_index<'a>(indexes: &'a [MetadataIndex], key: &str) -> Result<&'a MetadataIndex> {
    indexes
        .iter()
        .find(|i| i.property == key)
        .ok_or_else(|| Error::filter(key, "no metadata index on this property (create one to filter on it)"))
}

/// A filter bound to the positions of the metadata indexes it reads.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    clauses: Vec<(usize, Condition)>,
}

impl CompiledFilter {
    /// Whether the vector at `slot` matches, given one column of indexed values per metadata index.
    pub fn matches_slot(&self, columns: &[Vec<IndexedValue>], slot: usize) -> bool {
        self.clauses.iter().all(|(position, condition)| {
            columns.get(*position).and_then(|c| c.get(slot)).is_some_and(|value| condition.matches(value))
        })
    }

    /// The clauses: the position of the metadata index each reads, and its condition (string
    /// operands already cut to the indexed prefix).
    pub fn clauses(&self) -> &[(usize, Condition)] {
        &self.clauses
    }
}

impl Condition {
    /// Whether an indexed value satisfies the condition.
    pub fn matches(&self, value: &IndexedValue) -> bool {
        self.matches_ref(value.as_ref())
    }

    /// [`Condition::matches`] on a borrowed value.
    pub fn matches_ref(&self, value: IndexedRef<'_>) -> bool {
        match self {
            Condition::Eq(operand) => operand.equals(value),
            Condition::Ne(operand) => !operand.equals(value),
            Condition::In(operands) => operands.iter().any(|o| o.equals(value)),
            Condition::Nin(operands) => !operands.iter().any(|o| o.equals(value)),
            Condition::Range { lower, upper } => {
                let above = lower.as_ref().is_none_or(|b| match b.value.compare(value) {
                    // `compare` orders the bound against the value: the value is above a lower
                    // bound when the bound is less (or equal, if inclusive).
                    Some(Ordering::Less) => true,
                    Some(Ordering::Equal) => b.inclusive,
                    _ => false,
                });
                let below = upper.as_ref().is_none_or(|b| match b.value.compare(value) {
                    Some(Ordering::Greater) => true,
                    Some(Ordering::Equal) => b.inclusive,
                    _ => false,
                });
                above && below
            }
        }
    }

    fn operands(&self) -> Vec<&Operand> {
        match self {
            Condition::Eq(o) | Condition::Ne(o) => vec![o],
            Condition::In(os) | Condition::Nin(os) => os.iter().collect(),
            Condition::Range { lower, upper } => lower.iter().chain(upper).map(|b| &b.value).collect(),
        }
    }

    fn with_string_prefix(&self, max: usize) -> Condition {
        let cut = |o: &Operand| match o {
            Operand::String(s) => Operand::String(utf8_prefix(s, max).to_owned()),
            other => other.clone(),
        };
        let cut_bound =
            |b: &Option<Bound>| b.as_ref().map(|b| Bound { value: cut(&b.value), inclusive: b.inclusive });
        match self {
            Condition::Eq(o) => Condition::Eq(cut(o)),
            Condition::Ne(o) => Condition::Ne(cut(o)),
            Condition::In(os) => Condition::In(os.iter().map(cut).collect()),
            Condition::Nin(os) => Condition::Nin(os.iter().map(cut).collect()),
            Condition::Range { lower, upper } => {
                Condition::Range { lower: cut_bound(lower), upper: cut_bound(upper) }
            }
        }
    }
}

impl Operand {
    fn equals(&self, value: IndexedRef<'_>) -> bool {
        match (self, value) {
            (Operand::Null, IndexedRef::Missing) => true,
            (Operand::Bool(a), IndexedRef::Bool(b)) => *a == b,
            (Operand::Number(a), IndexedRef::Number(b)) => *a == b,
            (Operand::String(a), IndexedRef::String(b)) => a.as_str() == b,
            _ => false,
        }
    }

    /// The order of this operand relative to `value`, when both are numbers or both strings.
    fn compare(&self, value: IndexedRef<'_>) -> Option<Ordering> {
        match (self, value) {
            (Operand::Number(a), IndexedRef::Number(b)) => a.partial_cmp(&b),
            (Operand::String(a), IndexedRef::String(b)) => Some(a.as_str().cmp(b)),
            _ => None,
        }
    }

    fn from_json(key: &str, operator: &str, value: &Value) -> Result<Operand> {
        match value {
            Value::Null => Ok(Operand::Null),
            Value::Bool(b) => Ok(Operand::Bool(*b)),
            Value::Number(n) => n
                .as_f64()
                .map(Operand::Number)
                .ok_or_else(|| Error::filter(key, format!("{operator}: {n} is not a representable number"))),
            Value::String(s) => Ok(Operand::String(s.clone())),
            other => Err(Error::filter(
                key,
                format!("{operator} takes a string, number, boolean or null, not {}", type_name(other)),
            )),
        }
    }

    /// The operand as JSON, for error messages and drivers that translate filters.
    pub fn to_json(&self) -> Value {
        match self {
            Operand::Null => Value::Null,
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Operand::String(s) => Value::String(s.clone()),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Operand::Null => "null",
            Operand::Bool(_) => "a boolean",
            Operand::Number(_) => "a number",
            Operand::String(_) => "a string",
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_condition(key: &str, value: &Value) -> Result<Condition> {
    let operators = match value {
        Value::Object(operators) => operators,
        Value::Array(_) => {
            return Err(Error::filter(key, "an array is not a value to compare with; use {\"$in\": [...]}"));
        }
        scalar => return Ok(Condition::Eq(Operand::from_json(key, "$eq", scalar)?)),
    };
    if operators.is_empty() {
        return Err(Error::filter(key, format!("an operator object needs one of {OPERATORS}")));
    }
    let mut equality = None;
    let mut lower: Option<(String, Bound)> = None;
    let mut upper: Option<(String, Bound)> = None;
    for (operator, operand) in operators {
        let op = operator.as_str();
        match op {
            "$eq" | "$ne" | "$in" | "$nin" => {
                let condition = match op {
                    "$eq" => Condition::Eq(Operand::from_json(key, op, operand)?),
                    "$ne" => Condition::Ne(Operand::from_json(key, op, operand)?),
                    _ => {
                        let Value::Array(items) = operand else {
                            return Err(Error::filter(
                                key,
                                format!(
                                    "{op} takes an array of strings, numbers, booleans or nulls, not {}",
                                    type_name(operand)
                                ),
                            ));
                        };
                        let items = items
                            .iter()
                            .map(|i| Operand::from_json(key, op, i))
                            .collect::<Result<Vec<_>>>()?;
                        if op == "$in" { Condition::In(items) } else { Condition::Nin(items) }
                    }
                };
                equality = Some((op, condition));
            }
            "$lt" | "$lte" | "$gt" | "$gte" => {
                let value = match operand {
                    Value::String(s) => Operand::String(s.clone()),
                    Value::Number(_) => Operand::from_json(key, op, operand)?,
                    other => {
                        return Err(Error::filter(
                            key,
                            format!("{op} takes a string or a number, not {}", type_name(other)),
                        ));
                    }
                };
                let bound = Bound { value, inclusive: op.ends_with('e') };
                let slot = if op.starts_with("$l") { &mut upper } else { &mut lower };
                if let Some((other, _)) = slot {
                    return Err(Error::filter(key, format!("{other} and {op} cannot be combined")));
                }
                *slot = Some((op.to_owned(), bound));
            }
            unknown => {
                return Err(Error::filter(
                    key,
                    format!("unknown operator {unknown:?}; expected one of {OPERATORS}"),
                ));
            }
        }
    }
    match (equality, lower, upper) {
        (Some((_, condition)), None, None) if operators.len() == 1 => Ok(condition),
        (Some((op, _)), _, _) => Err(Error::filter(
            key,
            format!(
                "{op} cannot be combined with other operators (only a lower bound $gt/$gte and an upper bound $lt/$lte can)"
            ),
        )),
        (None, lower, upper) => {
            if let (Some((_, l)), Some((_, u))) = (&lower, &upper)
                && std::mem::discriminant(&l.value) != std::mem::discriminant(&u.value)
            {
                return Err(Error::filter(key, "the bounds of a range must be both numbers or both strings"));
            }
            Ok(Condition::Range { lower: lower.map(|(_, b)| b), upper: upper.map(|(_, b)| b) })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(filter: Value) -> Result<Filter> {
        Filter::parse(&filter, &VectorLimits::default())
    }

    fn message(result: Result<Filter>) -> String {
        match result {
            Err(Error::InvalidFilter { key, message }) => format!("{key}: {message}"),
            other => panic!("expected InvalidFilter, got {other:?}"),
        }
    }

    #[test]
    fn a_scalar_is_an_implicit_eq_and_ranges_pair_bounds() {
        let f = parse(json!({"lang": "rust", "n": {"$gte": 1, "$lt": 5}})).unwrap();
        assert_eq!(
            f.clauses,
            vec![
                Clause { key: "lang".into(), condition: Condition::Eq(Operand::String("rust".into())) },
                Clause {
                    key: "n".into(),
                    condition: Condition::Range {
                        lower: Some(Bound { value: Operand::Number(1.0), inclusive: true }),
                        upper: Some(Bound { value: Operand::Number(5.0), inclusive: false }),
                    }
                },
            ]
        );
    }

    #[test]
    fn malformed_filters_name_the_key_and_the_problem() {
        let cases = [
            (json!([1]), "a filter must be a JSON object, not an array"),
            (json!({}), "at least one key"),
            (json!({"k": {"$regex": "x"}}), "k: unknown operator \"$regex\""),
            (json!({"k": {}}), "k: an operator object needs one of"),
            (json!({"k": [1, 2]}), "k: an array is not a value"),
            (json!({"k": {"$in": "x"}}), "k: $in takes an array"),
            (json!({"k": {"$in": [{}]}}), "k: $in takes a string, number, boolean or null, not an object"),
            (json!({"k": {"$eq": [1]}}), "k: $eq takes a string, number, boolean or null, not an array"),
            (json!({"k": {"$lt": true}}), "k: $lt takes a string or a number, not a boolean"),
            (json!({"k": {"$lt": null}}), "k: $lt takes a string or a number, not null"),
            (json!({"k": {"$lt": 1, "$lte": 2}}), "k: $lt and $lte cannot be combined"),
            (json!({"k": {"$eq": 1, "$ne": 2}}), "cannot be combined with other operators"),
            (json!({"k": {"$eq": 1, "$gt": 0}}), "$eq cannot be combined"),
            (
                json!({"k": {"$gt": 1, "$lt": "z"}}),
                "k: the bounds of a range must be both numbers or both strings",
            ),
            (json!({"$and": 1}), "$and: \"$and\" starts with '$'"),
            (json!({"a..b": 1}), "a..b: \"a..b\" has an empty segment"),
        ];
        for (filter, expected) in cases {
            let got = message(parse(filter.clone()));
            assert!(got.contains(expected), "{filter}: {got:?} should contain {expected:?}");
        }
    }

    #[test]
    fn the_size_limit_is_on_compact_json() {
        let limits = VectorLimits::default();
        // {"k":"<v>"} is 8 bytes of punctuation and key around the value.
        let at_limit = json!({"k": "x".repeat(limits.max_filter_bytes - 8)});
        assert_eq!(serde_json::to_vec(&at_limit).unwrap().len(), limits.max_filter_bytes);
        assert!(Filter::parse(&at_limit, &limits).is_ok());
        let over = json!({"k": "x".repeat(limits.max_filter_bytes - 7)});
        assert!(matches!(
            Filter::parse(&over, &limits),
            Err(Error::TooLarge { field: "filter", size: 2048, limit: 2047 })
        ));
    }

    #[test]
    fn operands_must_fit_the_index_type() {
        let indexes = [
            MetadataIndex { property: "n".into(), index_type: MetadataIndexType::Number },
            MetadataIndex { property: "b".into(), index_type: MetadataIndexType::Boolean },
        ];
        assert!(parse(json!({"n": {"$in": [1, null]}, "b": false})).unwrap().check_indexed(&indexes).is_ok());
        let e = message(Err(parse(json!({"n": "1"})).unwrap().check_indexed(&indexes).unwrap_err()));
        assert!(e.contains("n: the property is indexed as number, but the operand \"1\" is a string"), "{e}");
        let e = message(Err(parse(json!({"b": {"$gt": 0}})).unwrap().check_indexed(&indexes).unwrap_err()));
        assert!(e.contains("indexed as boolean"), "{e}");
        let e = message(Err(parse(json!({"other": 1})).unwrap().check_indexed(&indexes).unwrap_err()));
        assert!(e.contains("other: no metadata index"), "{e}");
    }

    #[test]
    fn conditions_treat_absent_values_as_null() {
        let missing = IndexedValue::Missing;
        let one = IndexedValue::Number(1.0);
        assert!(Condition::Eq(Operand::Null).matches(&missing));
        assert!(!Condition::Eq(Operand::Null).matches(&one));
        assert!(Condition::Ne(Operand::Number(1.0)).matches(&missing));
        assert!(Condition::Nin(vec![Operand::Number(1.0)]).matches(&missing));
        let range = Condition::Range {
            lower: Some(Bound { value: Operand::Number(0.0), inclusive: true }),
            upper: None,
        };
        assert!(!range.matches(&missing));
        assert!(range.matches(&one));
    }
}
