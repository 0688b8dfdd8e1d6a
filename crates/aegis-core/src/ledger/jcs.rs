//! RFC 8785 JSON Canonicalization Scheme (JCS) for `serde_json` values: the form in which
//! `detail` is hashed and checkpoints and bundle manifests are signed.
//!
//! - Object members are sorted by their names as UTF-16 code units, recursively.
//! - No whitespace.
//! - Strings are escaped as ECMAScript `JSON.stringify` does: `\"`, `\\`, `\b`, `\f`, `\n`,
//!   `\r`, `\t`, other characters below U+0020 as `\u00xx` (lowercase hex), everything else as
//!   itself (non-ASCII, U+007F and U+2028 included).
//! - Numbers are IEEE doubles printed as ECMAScript `Number.prototype.toString` does (shortest
//!   round-trip digits; plain notation from 1e-6 up to below 1e21, otherwise `1.5e+21` style;
//!   `-0` as `0`). Integers are converted to doubles first, so those beyond ±2^53 are rounded,
//!   exactly as RFC 8785 specifies.
//!
//! `serde_json` cannot hold NaN or infinities, so every value has a JCS form and these
//! functions cannot fail.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// The JCS serialisation of `value`.
pub fn serialize(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The JCS serialisation of an object given as a map.
pub fn serialize_object(object: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(&mut out, object);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(object) => write_object(out, object),
    }
}

fn write_object(out: &mut String, object: &Map<String, Value>) {
    let mut members: Vec<(&String, &Value)> = object.iter().collect();
    members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (name, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, number: &Number) {
    // A `Number` is a u64, an i64 or a finite f64; JCS works on its double value, so the
    // integer casts round to the nearest double on purpose.
    let value = if let Some(n) = number.as_u64() {
        n as f64
    } else if let Some(n) = number.as_i64() {
        n as f64
    } else {
        number.as_f64().unwrap_or(0.0)
    };
    out.push_str(&format_double(value));
}

/// ECMAScript `Number::toString(x)` for a finite double (ECMA-262 §6.1.6.1.20).
pub(super) fn format_double(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        // -0 prints as 0; non-finite values cannot come out of serde_json.
        return String::from("0");
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // Rust's `{:e}` prints the shortest digit string that round-trips (closest to the value
    // when several do), which is the `s` of the ECMAScript algorithm: `d[.ddd]e<exp>`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    // x = 0.digits × 10^n, and k is the number of digits.
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exponent + 1;
    let mut out = String::from(sign);
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        let _ = write!(out, "{}", e.unsigned_abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_print_as_ecmascript_does() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-1.5e300, "-1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (0.000_001_234, "0.000001234"),
            (4.35, "4.35"),
            (0.3, "0.3"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_double(*value), *expected, "{value:e}");
        }
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_rounded_like_doubles() {
        assert_eq!(
            serialize(&json!(9_007_199_254_740_993_u64)),
            "9007199254740992"
        );
        assert_eq!(serialize(&json!(u64::MAX)), "18446744073709552000");
        assert_eq!(serialize(&json!(i64::MIN)), "-9223372036854776000");
        assert_eq!(serialize(&json!(42)), "42");
    }

    #[test]
    fn object_members_sort_by_utf16_code_units_not_utf8_bytes() {
        // U+E000 sorts after U+1F600 in UTF-8 but before it in UTF-16 (0xE000 < 0xD83D).
        // The RFC 8785 §3.2.3 example order: "\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33".
        let value = json!({
            "\u{fb33}": 7, "\u{1f600}": 6, "\u{20ac}": 5, "\u{f6}": 4, "\u{80}": 3, "1": 2, "\r": 1,
            "\u{e000}": 8,
        });
        assert_eq!(
            serialize(&value),
            "{\"\\r\":1,\"1\":2,\"\u{80}\":3,\"\u{f6}\":4,\"\u{20ac}\":5,\"\u{1f600}\":6,\
             \"\u{e000}\":8,\"\u{fb33}\":7}"
        );
    }

    #[test]
    fn nested_objects_are_sorted_and_arrays_keep_their_order() {
        let value = json!({"b": [3, {"z": 1, "a": 2}, 1], "a": {"y": null, "x": true}});
        assert_eq!(
            serialize(&value),
            r#"{"a":{"x":true,"y":null},"b":[3,{"a":2,"z":1},1]}"#
        );
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let value = json!("q\"b\\s/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}\u{2028}é😀");
        assert_eq!(
            serialize(&value),
            "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}\u{2028}é😀\""
        );
    }

    #[test]
    fn rfc8785_sample_canonicalises_as_published() {
        // RFC 8785 §3.2.2 input, with the numbers as JSON text.
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).expect("sample parses");
        assert_eq!(
            serialize(&value),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
             \"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }
}
