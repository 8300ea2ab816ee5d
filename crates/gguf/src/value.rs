//! GGUF metadata values: the 13 value types, typed arrays (which may nest), and lenient accessors.

use std::fmt::Write as _;

/// A GGUF metadata value type, numbered as in the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    /// The type with this id (0..=12), if any.
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The id written in the file.
    pub fn id(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// Lower-case name as used in messages (`"u32"`, `"string"`, ...).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// The fewest bytes one value of this type occupies in a file: its size for fixed-size types, the
    /// length prefix for strings, and element type plus count for arrays. Used to bound counts read from a
    /// file by the bytes that remain before anything is allocated.
    pub fn min_encoded_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            String => 8,
            Array => 12,
        }
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetadataArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: all elements share one type. Arrays of arrays hold one [`MetadataArray`] per element,
/// each with its own element type and length.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetadataArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl MetadataValue {
    pub fn value_type(&self) -> ValueType {
        use MetadataValue as V;
        match self {
            V::U8(_) => ValueType::U8,
            V::I8(_) => ValueType::I8,
            V::U16(_) => ValueType::U16,
            V::I16(_) => ValueType::I16,
            V::U32(_) => ValueType::U32,
            V::I32(_) => ValueType::I32,
            V::F32(_) => ValueType::F32,
            V::Bool(_) => ValueType::Bool,
            V::String(_) => ValueType::String,
            V::Array(_) => ValueType::Array,
            V::U64(_) => ValueType::U64,
            V::I64(_) => ValueType::I64,
            V::F64(_) => ValueType::F64,
        }
    }

    /// A short description of the type, e.g. `u32` or `array[string; 65536]`.
    pub fn type_description(&self) -> String {
        match self {
            MetadataValue::Array(a) => a.type_description(),
            other => other.value_type().name().to_string(),
        }
    }

    /// The value as an unsigned integer, if it is an integer of any width that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        use MetadataValue as V;
        match *self {
            V::U8(v) => Some(v.into()),
            V::U16(v) => Some(v.into()),
            V::U32(v) => Some(v.into()),
            V::U64(v) => Some(v),
            V::I8(v) => u64::try_from(v).ok(),
            V::I16(v) => u64::try_from(v).ok(),
            V::I32(v) => u64::try_from(v).ok(),
            V::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is an integer of any width that fits.
    pub fn as_i64(&self) -> Option<i64> {
        use MetadataValue as V;
        match *self {
            V::I8(v) => Some(v.into()),
            V::I16(v) => Some(v.into()),
            V::I32(v) => Some(v.into()),
            V::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float, if it is an `f32` or `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v.into()),
            MetadataValue::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            MetadataValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A one-line rendering for humans: scalars in full, strings quoted and escaped (cut after 200
    /// characters), arrays as their type and length and the first `max_items` elements.
    pub fn summary(&self, max_items: usize) -> String {
        use MetadataValue as V;
        match self {
            V::U8(v) => v.to_string(),
            V::I8(v) => v.to_string(),
            V::U16(v) => v.to_string(),
            V::I16(v) => v.to_string(),
            V::U32(v) => v.to_string(),
            V::I32(v) => v.to_string(),
            V::F32(v) => format!("{v:e}"),
            V::Bool(v) => v.to_string(),
            V::String(s) => quote(s, 200),
            V::Array(a) => a.summary(max_items),
            V::U64(v) => v.to_string(),
            V::I64(v) => v.to_string(),
            V::F64(v) => format!("{v:e}"),
        }
    }
}

impl MetadataArray {
    pub fn element_type(&self) -> ValueType {
        use MetadataArray as A;
        match self {
            A::U8(_) => ValueType::U8,
            A::I8(_) => ValueType::I8,
            A::U16(_) => ValueType::U16,
            A::I16(_) => ValueType::I16,
            A::U32(_) => ValueType::U32,
            A::I32(_) => ValueType::I32,
            A::F32(_) => ValueType::F32,
            A::Bool(_) => ValueType::Bool,
            A::String(_) => ValueType::String,
            A::Array(_) => ValueType::Array,
            A::U64(_) => ValueType::U64,
            A::I64(_) => ValueType::I64,
            A::F64(_) => ValueType::F64,
        }
    }

    pub fn len(&self) -> usize {
        use MetadataArray as A;
        match self {
            A::U8(v) => v.len(),
            A::I8(v) => v.len(),
            A::U16(v) => v.len(),
            A::I16(v) => v.len(),
            A::U32(v) => v.len(),
            A::I32(v) => v.len(),
            A::F32(v) => v.len(),
            A::Bool(v) => v.len(),
            A::String(v) => v.len(),
            A::Array(v) => v.len(),
            A::U64(v) => v.len(),
            A::I64(v) => v.len(),
            A::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            MetadataArray::String(v) => Some(v),
            _ => None,
        }
    }

    /// `array[<element type>; <len>]`.
    pub fn type_description(&self) -> String {
        format!("array[{}; {}]", self.element_type().name(), self.len())
    }

    /// Element `i` as a standalone value (arrays of arrays give [`MetadataValue::Array`]).
    pub fn get(&self, i: usize) -> Option<MetadataValue> {
        use MetadataArray as A;
        use MetadataValue as V;
        Some(match self {
            A::U8(v) => V::U8(*v.get(i)?),
            A::I8(v) => V::I8(*v.get(i)?),
            A::U16(v) => V::U16(*v.get(i)?),
            A::I16(v) => V::I16(*v.get(i)?),
            A::U32(v) => V::U32(*v.get(i)?),
            A::I32(v) => V::I32(*v.get(i)?),
            A::F32(v) => V::F32(*v.get(i)?),
            A::Bool(v) => V::Bool(*v.get(i)?),
            A::String(v) => V::String(v.get(i)?.clone()),
            A::Array(v) => V::Array(v.get(i)?.clone()),
            A::U64(v) => V::U64(*v.get(i)?),
            A::I64(v) => V::I64(*v.get(i)?),
            A::F64(v) => V::F64(*v.get(i)?),
        })
    }

    /// `array[string; 65536] ["<s>", "\x00", ...]`: the type, the length and the first `max_items` elements.
    pub fn summary(&self, max_items: usize) -> String {
        let mut out = self.type_description();
        out.push_str(" [");
        let shown = self.len().min(max_items);
        for i in 0..shown {
            if i > 0 {
                out.push_str(", ");
            }
            if let Some(item) = self.get(i) {
                out.push_str(&item.summary(max_items));
            }
        }
        if self.len() > shown {
            out.push_str(if shown > 0 { ", ..." } else { "..." });
        }
        out.push(']');
        out
    }
}

macro_rules! from_scalar {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for MetadataValue {
            fn from(v: $t) -> MetadataValue {
                MetadataValue::$v(v)
            }
        }
        impl From<Vec<$t>> for MetadataArray {
            fn from(v: Vec<$t>) -> MetadataArray {
                MetadataArray::$v(v)
            }
        }
        impl From<Vec<$t>> for MetadataValue {
            fn from(v: Vec<$t>) -> MetadataValue {
                MetadataValue::Array(MetadataArray::$v(v))
            }
        }
    )*};
}

from_scalar!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32, bool => Bool,
    String => String, u64 => U64, i64 => I64, f64 => F64);

impl From<&str> for MetadataValue {
    fn from(v: &str) -> MetadataValue {
        MetadataValue::String(v.to_string())
    }
}

impl From<Vec<&str>> for MetadataValue {
    fn from(v: Vec<&str>) -> MetadataValue {
        MetadataValue::Array(MetadataArray::String(v.into_iter().map(str::to_string).collect()))
    }
}

impl From<MetadataArray> for MetadataValue {
    fn from(v: MetadataArray) -> MetadataValue {
        MetadataValue::Array(v)
    }
}

impl From<Vec<MetadataArray>> for MetadataValue {
    fn from(v: Vec<MetadataArray>) -> MetadataValue {
        MetadataValue::Array(MetadataArray::Array(v))
    }
}

/// `s` in double quotes with control characters, quotes and backslashes escaped, cut after `max_chars`.
fn quote(s: &str, max_chars: usize) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push_str("...");
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_type_ids_round_trip() {
        for id in 0..13 {
            assert_eq!(ValueType::from_id(id).map(|t| t.id()), Some(id));
        }
        assert_eq!(ValueType::from_id(13), None);
    }

    #[test]
    fn accessors_are_lenient_about_integer_width_only() {
        assert_eq!(MetadataValue::U32(7).as_u64(), Some(7));
        assert_eq!(MetadataValue::I32(-1).as_u64(), None);
        assert_eq!(MetadataValue::I32(-1).as_i64(), Some(-1));
        assert_eq!(MetadataValue::U64(u64::MAX).as_i64(), None);
        assert_eq!(MetadataValue::F32(0.5).as_u64(), None);
        assert_eq!(MetadataValue::F32(0.5).as_f64(), Some(0.5));
        assert_eq!(MetadataValue::String("x".into()).as_str(), Some("x"));
    }

    #[test]
    fn summaries() {
        let a = MetadataArray::String(vec!["<s>".into(), "a\"b".into(), "\\n".into()]);
        assert_eq!(a.summary(2), r#"array[string; 3] ["<s>", "a\"b", ...]"#);
        let nested = MetadataArray::Array(vec![MetadataArray::U8(vec![1, 2]), MetadataArray::F32(vec![])]);
        assert_eq!(nested.summary(4), "array[array; 2] [array[u8; 2] [1, 2], array[f32; 0] []]");
        assert_eq!(MetadataValue::String("x".repeat(300)).summary(3).len(), 200 + 5);
    }
}
