//! A small YAML tree with a line and column on every key and value, built from saphyr-parser's
//! events, for policy files.
//!
//! Only what a policy file needs: mappings with scalar keys, sequences, scalars. Aliases, complex
//! keys and several documents are refused. Duplicate keys are kept here and reported by the
//! walker, which knows their full key path. Policy files hold no secrets, so scalar text is a
//! plain `String`.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A position in the file: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mark {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column, counted in characters.
    pub(crate) column: usize,
}

impl Mark {
    /// The start of the file.
    pub(crate) const START: Mark = Mark { line: 1, column: 1 };

    fn of(span: Span) -> Self {
        Self {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A YAML value and where it starts.
#[derive(Debug)]
pub(crate) struct Node {
    /// Where the value starts.
    pub(crate) mark: Mark,
    /// The value.
    pub(crate) value: Value,
}

/// The shapes a value can take.
#[derive(Debug)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// A scalar, as written (quoted or not).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, duplicates included.
    Map(Vec<Entry>),
}

impl Value {
    /// A word for the kind of value, for "expected X, found a mapping".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "nothing",
            Self::Scalar(_) => "a scalar",
            Self::Seq(_) => "a list",
            Self::Map(_) => "a mapping",
        }
    }
}

/// One `key: value` pair of a mapping.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The key text.
    pub(crate) key: String,
    /// Where the key starts.
    pub(crate) mark: Mark,
    /// The value.
    pub(crate) value: Node,
}

/// Malformed YAML, or a YAML feature policy files do not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// Where the problem was found.
    pub(crate) mark: Mark,
    /// What is wrong.
    pub(crate) message: String,
}

/// Parses one YAML document; a `Null` node for an empty file.
///
/// # Errors
/// The first syntax error, alias, complex key, extra document or over-deep nesting.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    let mut reader = Reader {
        parser: Parser::new_from_str(text),
        last: Mark::START,
    };
    let mut root = Node {
        mark: Mark::START,
        value: Value::Null,
    };
    let mut documents = 0;
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => return Ok(root),
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        mark: Mark::of(span),
                        message: "only one YAML document is allowed in a policy file".to_owned(),
                    });
                }
                let (event, span) = reader.next()?;
                root = reader.node(event, span, 0)?;
            }
            other => {
                return Err(YamlError {
                    mark: Mark::of(span),
                    message: format!("unexpected YAML event {}", describe(&other)),
                });
            }
        }
    }
}

/// Deepest nesting accepted; policy files need four levels.
const MAX_DEPTH: usize = 16;

struct Reader<'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    last: Mark,
}

impl<'input> Reader<'input> {
    fn next(&mut self) -> Result<(Event<'input>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => {
                self.last = Mark::of(span);
                Ok((event, span))
            }
            Some(Err(err)) => Err(YamlError {
                mark: Mark {
                    line: err.marker().line(),
                    column: err.marker().col() + 1,
                },
                message: format!("invalid YAML: {}", err.info()),
            }),
            None => Err(YamlError {
                mark: self.last,
                message: "invalid YAML: unexpected end of input".to_owned(),
            }),
        }
    }

    fn node(&mut self, event: Event<'input>, span: Span, depth: usize) -> Result<Node, YamlError> {
        let mark = Mark::of(span);
        if depth > MAX_DEPTH {
            return Err(YamlError {
                mark,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        let value = match event {
            Event::Scalar(text, style, _, _) => {
                let is_plain = matches!(style, ScalarStyle::Plain);
                if is_plain && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar(text.into_owned())
                }
            }
            Event::SequenceStart(_, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break Value::Seq(items);
                    }
                    items.push(self.node(event, span, depth + 1)?);
                }
            }
            Event::MappingStart(_, _) => {
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    let key_mark = Mark::of(span);
                    let key = match event {
                        Event::MappingEnd => break Value::Map(entries),
                        Event::Scalar(text, _, _, _) => text.into_owned(),
                        other => {
                            return Err(YamlError {
                                mark: key_mark,
                                message: format!(
                                    "keys must be plain words, found {}",
                                    describe(&other)
                                ),
                            });
                        }
                    };
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, depth + 1)?;
                    entries.push(Entry {
                        key,
                        mark: key_mark,
                        value,
                    });
                }
            }
            Event::Alias(_) => {
                return Err(YamlError {
                    mark,
                    message: "YAML aliases (*name) are not supported in policy files".to_owned(),
                });
            }
            other => {
                return Err(YamlError {
                    mark,
                    message: format!("unexpected YAML event {}", describe(&other)),
                });
            }
        };
        Ok(Node { mark, value })
    }
}

fn describe(event: &Event<'_>) -> &'static str {
    match event {
        Event::SequenceStart(..) => "a list",
        Event::MappingStart(..) => "a mapping",
        Event::Alias(_) => "an alias",
        Event::Scalar(..) => "a scalar",
        Event::SequenceEnd | Event::MappingEnd => "the end of a collection",
        Event::DocumentStart(_) | Event::DocumentEnd => "a document marker",
        Event::StreamStart | Event::StreamEnd | Event::Nothing => "the end of input",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entries(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("expected a mapping, found {}", other.kind()),
        }
    }

    fn items(node: &Node) -> &[Node] {
        match &node.value {
            Value::Seq(items) => items,
            other => panic!("expected a list, found {}", other.kind()),
        }
    }

    #[test]
    fn keys_and_values_carry_line_and_column() {
        let root = parse("agent: bot\nrules:\n  - service: jira\n    methods: [GET, post]\n")
            .expect("parses");
        let top = entries(&root);
        assert_eq!(
            (top[0].key.as_str(), top[0].mark),
            ("agent", Mark { line: 1, column: 1 })
        );
        assert_eq!(top[0].value.mark, Mark { line: 1, column: 8 });
        let rule = &items(&top[1].value)[0];
        let fields = entries(rule);
        assert_eq!(fields[0].mark, Mark { line: 3, column: 5 });
        let methods = items(&fields[1].value);
        assert_eq!(
            methods[1].mark,
            Mark {
                line: 4,
                column: 20
            }
        );
        assert!(matches!(&methods[1].value, Value::Scalar(text) if text == "post"));
    }

    #[test]
    fn block_list_items_point_at_their_text() {
        let root = parse("paths:\n  - /a\n  - \"/b\"\n").expect("parses");
        let paths = items(&entries(&root)[0].value);
        assert_eq!(paths[0].mark, Mark { line: 2, column: 5 });
        assert_eq!(paths[1].mark, Mark { line: 3, column: 5 });
    }

    #[test]
    fn nulls_and_quoted_nulls_differ() {
        let root = parse("a:\nb: ~\nc: \"null\"\n").expect("parses");
        let top = entries(&root);
        assert!(matches!(top[0].value.value, Value::Null));
        assert!(matches!(top[1].value.value, Value::Null));
        assert!(matches!(&top[2].value.value, Value::Scalar(text) if text == "null"));
    }

    #[test]
    fn duplicates_are_kept_for_the_walker() {
        let root = parse("a: 1\na: 2\n").expect("parses");
        assert_eq!(entries(&root).len(), 2);
    }

    #[test]
    fn empty_input_is_null() {
        assert!(matches!(parse("").expect("parses").value, Value::Null));
        assert!(matches!(
            parse("# only a comment\n").expect("parses").value,
            Value::Null
        ));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse("agent: bot\nrules: [\n").expect_err("unclosed list");
        assert!(err.message.starts_with("invalid YAML"), "{err:?}");
        assert!(err.mark.line >= 2, "{err:?}");
    }

    #[test]
    fn aliases_complex_keys_and_second_documents_are_refused() {
        let alias = parse("a: &x 1\nb: *x\n").expect_err("alias");
        assert!(alias.message.contains("aliases"), "{alias:?}");
        let second = parse("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert!(second.message.contains("one YAML document"), "{second:?}");
        let complex = parse("? [a]\n: 1\n").expect_err("complex key");
        assert!(complex.message.contains("keys"), "{complex:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(
            parse(&deep)
                .expect_err("too deep")
                .message
                .contains("nesting")
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "[a-z:\\[\\]{}, \n\"'&*!|>#-]{0,64}") {
            let _ = parse(&text);
        }
    }
}
