//! JSON comparisons shared by the operators: structural equality where `1` equals `1.0`, and
//! the "number or wholly-numeric string" reading that the ordering operators use.

use serde_json::Value;

/// Structural equality of two JSON values; numbers compare by value, so `1 == 1.0`.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => false,
    }
}

fn numbers_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The numeric reading of a fact value: a JSON number, or a string that is wholly a decimal
/// number (optional sign, digits, optional fraction and exponent; no spaces, no `inf`/`NaN`).
pub fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

/// Parses a string that is wholly a decimal number.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let allowed = bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if digits == 0 || !allowed {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_equal_floats() {
        assert!(json_equal(&json!(1), &json!(1.0)));
        assert!(json_equal(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!json_equal(&json!(1), &json!("1")));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(json_equal(
            &json!({"a": 1, "b": 2}),
            &json!({"b": 2, "a": 1})
        ));
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(parse_decimal("12"), Some(12.0));
        assert_eq!(parse_decimal("-1.5e2"), Some(-150.0));
        assert_eq!(parse_decimal(".5"), Some(0.5));
        for bad in [
            "", " 1", "1 ", "12abc", "inf", "NaN", "1,5", "-", "e5", "0x10",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
