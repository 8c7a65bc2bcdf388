//! Printing only the selected fields: a serde `Serializer` wrapper that passes on the
//! members of a message that a [`Selection`] keeps and drops the others before their values
//! are printed, so a pruned reply is printed once, shorter, instead of printed whole and cut.
//!
//! It sits under any serializer (serde_json's writer, or its `Value` builder) and over every
//! message printer the codecs use: pbjson's generated impls (`serialize_struct`),
//! prost-reflect's and serde_json's `Value` (`serialize_map`), and a repeated message field's
//! list (`serialize_seq`: the same selection in every element). Whatever is neither (a
//! scalar, `null`) prints as it is. It knows nothing of descriptors: the keys it meets are
//! the printed keys, which is how `Selection::parse` stores them.

use serde::ser::{Impossible, Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};

use super::Selection;

/// `value` as JSON, with only `selection`'s members when there is a selection. Without one
/// it is `serde_json::to_vec`, no wrapper in the way.
pub(in crate::codec) fn to_json<T: Serialize + ?Sized>(
    value: &T,
    selection: Option<&Selection>,
) -> serde_json::Result<Vec<u8>> {
    match selection {
        None => serde_json::to_vec(value),
        Some(selection) => serde_json::to_vec(&Selected { value, selection }),
    }
}

/// `value` with only `selection`'s members, for any serializer.
struct Selected<'a, T: ?Sized> {
    value: &'a T,
    selection: &'a Selection,
}

impl<T: Serialize + ?Sized> Serialize for Selected<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A value selected whole goes straight to the serializer underneath.
        if self.selection.all {
            return self.value.serialize(serializer);
        }
        self.value.serialize(Pick {
            inner: serializer,
            selection: self.selection,
        })
    }
}

/// The serializer of one value under a selection that is not the whole value.
struct Pick<'a, S> {
    inner: S,
    selection: &'a Selection,
}

/// Serializer methods that print the same with or without a selection.
macro_rules! as_it_is {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        }
    )*};
}

impl<'a, S: Serializer> Serializer for Pick<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = PickSeq<'a, S::SerializeSeq>;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = PickMap<'a, S::SerializeMap>;
    type SerializeStruct = PickStruct<'a, S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    as_it_is! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let selection = self.selection;
        self.inner.serialize_some(&Selected { value, selection })
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let selection = self.selection;
        self.inner
            .serialize_newtype_struct(name, &Selected { value, selection })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_variant(name, index, variant, value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(PickSeq {
            inner: self.inner.serialize_seq(len)?,
            selection: self.selection,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.inner.serialize_tuple(len)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleStruct, S::Error> {
        self.inner.serialize_tuple_struct(name, len)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleVariant, S::Error> {
        self.inner.serialize_tuple_variant(name, index, variant, len)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(PickMap {
            inner: self.inner.serialize_map(len)?,
            selection: self.selection,
            pending: None,
        })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        Ok(PickStruct {
            inner: self.inner.serialize_struct(name, len)?,
            selection: self.selection,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeStructVariant, S::Error> {
        self.inner.serialize_struct_variant(name, index, variant, len)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A repeated message field: the same selection in every element.
struct PickSeq<'a, S> {
    inner: S,
    selection: &'a Selection,
}

impl<S: SerializeSeq> SerializeSeq for PickSeq<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let selection = self.selection;
        self.inner.serialize_element(&Selected { value, selection })
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// A message printed by pbjson: its fields by their printed keys.
struct PickStruct<'a, S> {
    inner: S,
    selection: &'a Selection,
}

impl<S: SerializeStruct> SerializeStruct for PickStruct<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        match self.selection.members.get(key) {
            Some(selection) => self.inner.serialize_field(key, &Selected { value, selection }),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// A message printed as a map (prost-reflect, a `Value` tree): its members by their keys.
struct PickMap<'a, S> {
    inner: S,
    selection: &'a Selection,
    /// The selection of the value whose key was just passed on; `None` after a dropped key.
    pending: Option<&'a Selection>,
}

impl<'a, S: SerializeMap> PickMap<'a, S> {
    fn member<K: Serialize + ?Sized>(&self, key: &K) -> Result<Option<&'a Selection>, S::Error> {
        key.serialize(KeyLookup {
            selection: self.selection,
            error: std::marker::PhantomData,
        })
    }
}

impl<S: SerializeMap> SerializeMap for PickMap<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), S::Error> {
        self.pending = self.member(key)?;
        match self.pending {
            Some(_) => self.inner.serialize_key(key),
            None => Ok(()),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        match self.pending.take() {
            Some(selection) => self.inner.serialize_value(&Selected { value, selection }),
            None => Ok(()),
        }
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        match self.member(key)? {
            Some(selection) => self.inner.serialize_entry(key, &Selected { value, selection }),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// Finds a map key's member selection without printing the key: a message's keys are
/// strings, anything else selects nothing.
struct KeyLookup<'a, E> {
    selection: &'a Selection,
    error: std::marker::PhantomData<E>,
}

/// Key types that are never a message's member.
macro_rules! no_member {
    ($($method:ident($($ty:ty),*);)*) => {$(
        fn $method(self, $(_: $ty),*) -> Result<Self::Ok, E> {
            Ok(None)
        }
    )*};
}

/// Compound keys cannot be printed as JSON keys at all.
macro_rules! no_key {
    ($($method:ident($($ty:ty),*) -> $out:ident;)*) => {$(
        fn $method(self, $(_: $ty),*) -> Result<Self::$out, E> {
            Err(serde::ser::Error::custom("a map key that is not a string"))
        }
    )*};
}

impl<'a, E: serde::ser::Error> Serializer for KeyLookup<'a, E> {
    type Ok = Option<&'a Selection>;
    type Error = E;
    type SerializeSeq = Impossible<Self::Ok, E>;
    type SerializeTuple = Impossible<Self::Ok, E>;
    type SerializeTupleStruct = Impossible<Self::Ok, E>;
    type SerializeTupleVariant = Impossible<Self::Ok, E>;
    type SerializeMap = Impossible<Self::Ok, E>;
    type SerializeStruct = Impossible<Self::Ok, E>;
    type SerializeStructVariant = Impossible<Self::Ok, E>;

    fn serialize_str(self, key: &str) -> Result<Self::Ok, E> {
        Ok(self.selection.members.get(key))
    }

    no_member! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    no_key! {
        serialize_seq(Option<usize>) -> SerializeSeq;
        serialize_tuple(usize) -> SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant;
        serialize_map(Option<usize>) -> SerializeMap;
        serialize_struct(&'static str, usize) -> SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, key: &T) -> Result<Self::Ok, E> {
        key.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        key: &T,
    ) -> Result<Self::Ok, E> {
        key.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, E> {
        Ok(None)
    }
}
