//! Conditions on an object's etag and upload time (`only_if`), their evaluation in RFC 7232 §6
//! order, and their parsing from HTTP conditional request headers.

use std::time::{Duration, SystemTime};

use crate::object::{Object, epoch_ms};
use crate::{Error, Result, http_date};

/// A condition a `get` or `put` is made under. Every field that is set must hold, with the
/// precedence of RFC 7232 §6: a passing `etag_matches` makes `uploaded_before` irrelevant, a
/// passing `etag_does_not_match` makes `uploaded_after` irrelevant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditional {
    /// Holds if the object exists and its etag is one of these (strong comparison). `If-Match`.
    pub etag_matches: Option<EtagCondition>,
    /// Holds if the object is absent or its etag is none of these (weak comparison).
    /// `If-None-Match`; `EtagCondition::Any` makes a put create-only.
    pub etag_does_not_match: Option<EtagCondition>,
    /// Holds if the object was uploaded strictly before this time. (`If-Unmodified-Since`)
    pub uploaded_before: Option<SystemTime>,
    /// Holds if the object exists and was uploaded strictly after this time.
    /// (`If-Modified-Since`)
    pub uploaded_after: Option<SystemTime>,
    /// Compare upload times truncated to whole seconds, as HTTP dates are.
    pub seconds_granularity: bool,
}

/// A set of entity tags a condition compares an object's etag with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagCondition {
    /// `*`: any etag, i.e. "the object exists".
    Any,
    Tags(Vec<EntityTag>),
}

/// One entity tag, without its quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    pub value: String,
    /// A weak tag (`W/"…"`) never matches under strong comparison (`etag_matches`).
    pub weak: bool,
}

/// What a condition is evaluated against: the current object's etag and upload time.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    pub etag: &'a str,
    pub uploaded: SystemTime,
}

impl EtagCondition {
    /// A single strong tag. Surrounding quotes, if any, are dropped, so both `etag` and
    /// `http_etag` work.
    pub fn tag(etag: impl Into<String>) -> EtagCondition {
        let etag = etag.into();
        let value = match etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            Some(inner) => inner.to_owned(),
            None => etag,
        };
        EtagCondition::Tags(vec![EntityTag { value, weak: false }])
    }

    fn contains(&self, etag: &str, strong: bool) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Tags(tags) => tags.iter().any(|t| t.value == etag && !(strong && t.weak)),
        }
    }

    /// Parses the value of an `If-Match` / `If-None-Match` header: `*` or a comma-separated
    /// list of (possibly weak) quoted entity tags. Unquoted tags are accepted as sent.
    pub fn from_header(field: &'static str, value: &str) -> Result<EtagCondition> {
        let value = value.trim();
        if value == "*" {
            return Ok(EtagCondition::Any);
        }
        let mut tags = Vec::new();
        let mut rest = value;
        loop {
            rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
            if rest.is_empty() {
                break;
            }
            let (weak, tail) = match rest.strip_prefix("W/") {
                Some(tail) => (true, tail),
                None => (false, rest),
            };
            let (tag, after) = if let Some(quoted) = tail.strip_prefix('"') {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| Error::invalid(field, format!("unterminated entity tag in {value:?}")))?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = tail.find(',').unwrap_or(tail.len());
                (tail[..end].trim(), &tail[end..])
            };
            if tag == "*" {
                return Err(Error::invalid(field, "`*` cannot be part of a list"));
            }
            tags.push(EntityTag { value: tag.to_owned(), weak });
            rest = after;
        }
        if tags.is_empty() {
            return Err(Error::invalid(field, "no entity tag"));
        }
        Ok(EtagCondition::Tags(tags))
    }

    fn merge(self, other: EtagCondition) -> EtagCondition {
        match (self, other) {
            (EtagCondition::Tags(mut a), EtagCondition::Tags(b)) => {
                a.extend(b);
                EtagCondition::Tags(a)
            }
            _ => EtagCondition::Any,
        }
    }
}

impl Conditional {
    /// Builds a condition from HTTP request headers (name, value), names compared
    /// case-insensitively, other headers ignored: `If-Match`, `If-None-Match`,
    /// `If-Modified-Since`, `If-Unmodified-Since`. A date that is not a valid HTTP-date is
    /// ignored (RFC 7232 §3.3, §3.4); a malformed entity-tag list is `InvalidInput`.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Conditional> {
        let mut condition = Conditional { seconds_granularity: true, ..Conditional::default() };
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("if-match") {
                let tags = EtagCondition::from_header("If-Match", value)?;
                condition.etag_matches = Some(match condition.etag_matches.take() {
                    Some(earlier) => earlier.merge(tags),
                    None => tags,
                });
            } else if name.eq_ignore_ascii_case("if-none-match") {
                let tags = EtagCondition::from_header("If-None-Match", value)?;
                condition.etag_does_not_match = Some(match condition.etag_does_not_match.take() {
                    Some(earlier) => earlier.merge(tags),
                    None => tags,
                });
            } else if name.eq_ignore_ascii_case("if-modified-since") {
                if let Some(date) = http_date::parse(value) {
                    condition.uploaded_after = Some(date);
                }
            } else if name.eq_ignore_ascii_case("if-unmodified-since") {
                // "Not modified since D" holds for an upload during second D itself, so the
                // strict `uploaded_before` bound is the next second.
                if let Some(date) = http_date::parse(value) {
                    condition.uploaded_before = Some(date + Duration::from_secs(1));
                }
            }
        }
        Ok(condition)
    }

    /// True if no condition is set.
    pub fn is_empty(&self) -> bool {
        self.etag_matches.is_none()
            && self.etag_does_not_match.is_none()
            && self.uploaded_before.is_none()
            && self.uploaded_after.is_none()
    }

    /// Whether the condition holds for `object` (`None`: the key is absent).
    pub fn holds_for(&self, object: Option<&Object>) -> bool {
        self.holds(object.map(|o| Validators { etag: &o.etag, uploaded: o.uploaded }))
    }

    /// Whether the condition holds for an object with these validators (`None`: absent).
    /// An absent object satisfies everything but `etag_matches` and `uploaded_after`.
    pub fn holds(&self, current: Option<Validators<'_>>) -> bool {
        let Some(current) = current else {
            return self.etag_matches.is_none() && self.uploaded_after.is_none();
        };
        let truncate = |ms: i64| if self.seconds_granularity { ms.div_euclid(1000) * 1000 } else { ms };
        let uploaded = truncate(epoch_ms(current.uploaded));

        let if_match = self.etag_matches.as_ref().is_none_or(|tags| tags.contains(current.etag, true));
        let if_none_match =
            self.etag_does_not_match.as_ref().is_none_or(|tags| !tags.contains(current.etag, false));
        let if_unmodified_since = match self.uploaded_before {
            None => true,
            Some(before) => {
                uploaded < truncate(epoch_ms(before)) || (self.etag_matches.is_some() && if_match)
            }
        };
        let if_modified_since = match self.uploaded_after {
            None => true,
            Some(after) => {
                truncate(epoch_ms(after)) < uploaded || (self.etag_does_not_match.is_some() && if_none_match)
            }
        };
        if_match && if_none_match && if_unmodified_since && if_modified_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const ETAG: &str = "test";

    fn uploaded() -> SystemTime {
        // 2023-02-24T00:09:00.500Z
        UNIX_EPOCH + Duration::from_millis(1_677_197_340_500)
    }

    fn holds(condition: &Conditional) -> bool {
        condition.holds(Some(Validators { etag: ETAG, uploaded: uploaded() }))
    }

    fn weak(value: &str) -> EtagCondition {
        EtagCondition::Tags(vec![EntityTag { value: value.into(), weak: true }])
    }

    #[test]
    fn etag_conditions_compare_strongly_for_match_and_weakly_for_none_match() {
        let matches = |tags| Conditional { etag_matches: Some(tags), ..Default::default() };
        let none_match = |tags| Conditional { etag_does_not_match: Some(tags), ..Default::default() };
        assert!(holds(&matches(EtagCondition::tag(ETAG))));
        assert!(holds(&matches(EtagCondition::tag("\"test\""))));
        assert!(holds(&matches(EtagCondition::Any)));
        assert!(!holds(&matches(EtagCondition::tag("other"))));
        assert!(!holds(&matches(weak(ETAG))), "a weak tag never matches strongly");
        assert!(!holds(&none_match(EtagCondition::tag(ETAG))));
        assert!(!holds(&none_match(weak(ETAG))), "weak comparison ignores W/");
        assert!(!holds(&none_match(EtagCondition::Any)));
        assert!(holds(&none_match(EtagCondition::tag("other"))));
    }

    #[test]
    fn upload_time_conditions_are_strict_and_can_use_seconds() {
        let past = uploaded() - Duration::from_secs(30);
        let future = uploaded() + Duration::from_secs(30);
        let before = |t| Conditional { uploaded_before: Some(t), ..Default::default() };
        let after = |t| Conditional { uploaded_after: Some(t), ..Default::default() };
        assert!(holds(&before(future)));
        assert!(!holds(&before(past)));
        assert!(!holds(&before(uploaded())));
        assert!(holds(&after(past)));
        assert!(!holds(&after(future)));
        assert!(!holds(&after(uploaded())));
        // 00:09:00.500 vs 00:09:00.100: later to the millisecond, equal to the second.
        let same_second = uploaded() - Duration::from_millis(400);
        assert!(holds(&after(same_second)));
        assert!(!holds(&Conditional { seconds_granularity: true, ..after(same_second) }));
    }

    #[test]
    fn a_passing_etag_condition_overrides_its_date_partner() {
        let past = uploaded() - Duration::from_secs(30);
        let future = uploaded() + Duration::from_secs(30);
        // If-Match passes → If-Unmodified-Since ignored.
        let c = Conditional {
            etag_matches: Some(EtagCondition::tag(ETAG)),
            uploaded_before: Some(past),
            ..Default::default()
        };
        assert!(holds(&c));
        // If-None-Match passes → If-Modified-Since ignored.
        let c = Conditional {
            etag_does_not_match: Some(EtagCondition::tag("other")),
            uploaded_after: Some(future),
            ..Default::default()
        };
        assert!(holds(&c));
        // If-None-Match fails → fails, whatever the date says.
        let c = Conditional {
            etag_does_not_match: Some(EtagCondition::tag(ETAG)),
            uploaded_after: Some(past),
            ..Default::default()
        };
        assert!(!holds(&c));
    }

    #[test]
    fn an_absent_object_fails_only_etag_matches_and_uploaded_after() {
        let now = SystemTime::now();
        let cases = [
            (Conditional { etag_matches: Some(EtagCondition::Any), ..Default::default() }, false),
            (Conditional { uploaded_after: Some(now), ..Default::default() }, false),
            (Conditional { etag_does_not_match: Some(EtagCondition::Any), ..Default::default() }, true),
            (Conditional { uploaded_before: Some(now), ..Default::default() }, true),
            (Conditional::default(), true),
        ];
        for (condition, expected) in cases {
            assert_eq!(condition.holds(None), expected, "{condition:?}");
        }
    }

    #[test]
    fn entity_tag_lists_parse() {
        let tags = EtagCondition::from_header("If-Match", r#""a", W/"b" ,"c,d",e"#).unwrap();
        let expected = EtagCondition::Tags(vec![
            EntityTag { value: "a".into(), weak: false },
            EntityTag { value: "b".into(), weak: true },
            EntityTag { value: "c,d".into(), weak: false },
            EntityTag { value: "e".into(), weak: false },
        ]);
        assert_eq!(tags, expected);
        assert_eq!(EtagCondition::from_header("If-Match", " * ").unwrap(), EtagCondition::Any);
        for bad in ["", " , ", "\"open", "\"a\", *"] {
            assert!(EtagCondition::from_header("If-Match", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_map_to_conditions() {
        let c = Conditional::from_headers([
            ("If-Match", "\"x\""),
            ("if-match", "\"y\""),
            ("IF-NONE-MATCH", "*"),
            ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("If-Unmodified-Since", "not a date"),
            ("Content-Type", "text/plain"),
        ])
        .unwrap();
        assert_eq!(
            c.etag_matches,
            Some(EtagCondition::Tags(vec![
                EntityTag { value: "x".into(), weak: false },
                EntityTag { value: "y".into(), weak: false },
            ]))
        );
        assert_eq!(c.etag_does_not_match, Some(EtagCondition::Any));
        assert_eq!(c.uploaded_after, Some(UNIX_EPOCH + Duration::from_secs(784_111_777)));
        assert_eq!(c.uploaded_before, None, "an invalid date is ignored");
        assert!(c.seconds_granularity);
        assert!(Conditional::from_headers([("If-Match", "\"open")]).is_err());
    }

    #[test]
    fn if_unmodified_since_holds_for_an_upload_in_that_very_second() {
        let date = http_date::format(uploaded()); // 00:09:00, the object is 00:09:00.500
        let c = Conditional::from_headers([("If-Unmodified-Since", date.as_str())]).unwrap();
        assert!(holds(&c));
        let earlier = http_date::format(uploaded() - Duration::from_secs(1));
        let c = Conditional::from_headers([("If-Unmodified-Since", earlier.as_str())]).unwrap();
        assert!(!holds(&c));
        let c = Conditional::from_headers([("If-Modified-Since", date.as_str())]).unwrap();
        assert!(!holds(&c), "not modified since the second it was uploaded in");
    }
}
