//! Cursors come back from clients: any text decodes to a cursor or a field error, never a panic, and
//! every cursor the platform makes decodes to itself.

use ledge_platform::{Cursor, PageRequest, PlatformError};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_cursor_text_is_a_cursor_or_a_field_error(text in "\\PC{0,80}") {
        match PageRequest::parse(Some(&text), None) {
            Ok(_) => {}
            Err(PlatformError::Invalid { field, .. }) => prop_assert_eq!(field, "cursor"),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn made_cursors_round_trip(at in any::<i64>(), id in "[a-z0-9-]{1,100}") {
        let cursor = Cursor { at, id };
        prop_assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused(limit in "\\PC{0,12}") {
        let fine = limit.is_empty() || limit.parse::<u32>().is_ok_and(|n| (1..=100).contains(&n));
        prop_assert_eq!(PageRequest::parse(None, Some(&limit)).is_ok(), fine);
    }
}
