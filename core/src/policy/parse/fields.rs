//! Typed access to the tables of a parsed TOML document, reporting every
//! problem with the byte offset of the key or value at fault.
//!
//! `[dump]` and `dump = { … }`, or `[[rule]]` and `rule = [{ … }]`, are the
//! same TOML, so sections are read through `TableLike` either way.

use toml_edit::{Item, TableLike, Value};

use super::suggest;

/// Collects errors as (byte offset, message); `parse` turns offsets into
/// lines and columns at the end.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<(usize, String)>);

impl Errors {
    pub(super) fn at(&mut self, offset: usize, message: impl Into<String>) {
        self.0.push((offset, message.into()));
    }

    pub(super) fn count(&self) -> usize {
        self.0.len()
    }
}

/// A table of the document, with where it starts and how messages name it.
pub(super) struct Section<'a> {
    table: &'a dyn TableLike,
    /// Offset of the header (`[[rule]]`) or of the inline table's `{`.
    pub(super) start: usize,
    /// Where the table is, for messages: "in [dump]", "at the top level".
    place: &'static str,
}

impl<'a> Section<'a> {
    pub(super) fn new(table: &'a dyn TableLike, start: usize, place: &'static str) -> Self {
        Section {
            table,
            start,
            place,
        }
    }

    /// Reports every key not in `known`, suggesting the nearest one.
    pub(super) fn reject_unknown_keys(&self, known: &[&str], errors: &mut Errors) {
        for (key, item) in self.table.iter() {
            if !known.contains(&key) {
                let offset = self.key_offset(key).or(start(item)).unwrap_or(self.start);
                errors.at(offset, suggest::unknown("key", key, self.place, known));
            }
        }
    }

    pub(super) fn get(&self, key: &'static str) -> Option<Field<'a>> {
        let item = self.table.get(key)?;
        let key_at = self.key_offset(key).unwrap_or(self.start);
        Some(Field {
            key,
            item,
            key_at,
            value_at: start(item).unwrap_or(key_at),
        })
    }

    fn key_offset(&self, key: &str) -> Option<usize> {
        self.table.key(key)?.span().map(|span| span.start)
    }
}

/// One `key = value` of a section.
pub(super) struct Field<'a> {
    pub(super) key: &'static str,
    item: &'a Item,
    pub(super) key_at: usize,
    pub(super) value_at: usize,
}

impl<'a> Field<'a> {
    pub(super) fn string(&self, errors: &mut Errors) -> Option<&'a str> {
        match self.item.as_str() {
            Some(text) => Some(text),
            None => self.wrong_type("a string", errors),
        }
    }

    pub(super) fn boolean(&self, errors: &mut Errors) -> Option<bool> {
        match self.item.as_bool() {
            Some(value) => Some(value),
            None => self.wrong_type("true or false", errors),
        }
    }

    /// An integer or a float, as `f64`.
    pub(super) fn number(&self, errors: &mut Errors) -> Option<f64> {
        match self.item.as_value() {
            Some(Value::Integer(value)) => Some(*value.value() as f64),
            Some(Value::Float(value)) => Some(*value.value()),
            _ => self.wrong_type("a number", errors),
        }
    }

    /// A string or a non-empty array of strings, each with its offset.
    pub(super) fn strings(&self, errors: &mut Errors) -> Option<Vec<(&'a str, usize)>> {
        if let Some(text) = self.item.as_str() {
            return Some(vec![(text, self.value_at)]);
        }
        let Some(array) = self.item.as_array() else {
            return self.wrong_type("a string or an array of strings", errors);
        };
        if array.is_empty() {
            errors.at(
                self.value_at,
                format!(
                    "`{}` is an empty array; give at least one value, or leave the key out",
                    self.key
                ),
            );
            return None;
        }
        let before = errors.count();
        let mut strings = Vec::with_capacity(array.len());
        for value in array.iter() {
            let at = value.span().map_or(self.value_at, |span| span.start);
            match value.as_str() {
                Some(text) => strings.push((text, at)),
                None => errors.at(
                    at,
                    format!(
                        "`{}` must hold strings, not {}",
                        self.key,
                        a(value.type_name())
                    ),
                ),
            }
        }
        (errors.count() == before).then_some(strings)
    }

    /// A table or inline table.
    pub(super) fn section(&self, place: &'static str, errors: &mut Errors) -> Option<Section<'a>> {
        match self.item.as_table_like() {
            Some(table) => Some(Section::new(table, self.value_at, place)),
            None => self.wrong_type("a table", errors),
        }
    }

    /// An array of tables (`[[rule]]`) or an array of inline tables.
    pub(super) fn sections(&self, place: &'static str, errors: &mut Errors) -> Vec<Section<'a>> {
        if let Some(tables) = self.item.as_array_of_tables() {
            return tables
                .iter()
                .map(|table| {
                    let at = table.span().map_or(self.key_at, |span| span.start);
                    Section::new(table, at, place)
                })
                .collect();
        }
        if let Some(array) = self.item.as_array() {
            let mut sections = Vec::with_capacity(array.len());
            for value in array.iter() {
                let at = value.span().map_or(self.value_at, |span| span.start);
                match value.as_inline_table() {
                    Some(table) => sections.push(Section::new(table, at, place)),
                    None => errors.at(
                        at,
                        format!(
                            "`{}` must hold tables, not {}",
                            self.key,
                            a(value.type_name())
                        ),
                    ),
                }
            }
            return sections;
        }
        let hint = if self.item.is_table() {
            format!(": write [[{}]], with two brackets", self.key)
        } else {
            String::new()
        };
        errors.at(
            self.key_at,
            format!(
                "`{}` must be an array of tables, not {}{hint}",
                self.key,
                a(self.item.type_name())
            ),
        );
        Vec::new()
    }

    fn wrong_type<T>(&self, expected: &str, errors: &mut Errors) -> Option<T> {
        errors.at(
            self.value_at,
            format!(
                "`{}` must be {expected}, not {}",
                self.key,
                a(self.item.type_name())
            ),
        );
        None
    }
}

/// Where an item starts, when the parser recorded it (dotted-key tables
/// have no span of their own).
fn start(item: &Item) -> Option<usize> {
    item.span().map(|span| span.start)
}

/// A type name with its article: "a string", "an integer".
fn a(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}
