//! A small YAML tree with a line number on every key and value, built from saphyr-parser's
//! events.
//!
//! Only what a config file needs: mappings with string keys, sequences, scalars. Aliases, complex
//! keys and several documents are refused. Duplicate keys are kept here and reported by the
//! walker, which knows their full path. Scalar text is zeroized on drop because it may be a
//! secret.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use zeroize::Zeroizing;

/// A YAML value.
pub(crate) enum Node {
    /// `~`, `null` or nothing.
    Null,
    /// A scalar; `is_quoted` for any style but plain.
    Scalar {
        text: Zeroizing<String>,
        is_quoted: bool,
        line: usize,
    },
    /// A sequence.
    Seq { items: Vec<Node>, line: usize },
    /// A mapping, in file order, duplicates included.
    Map { entries: Vec<Entry>, line: usize },
}

impl Node {
    /// A word for the kind of node, for "expected X, found a mapping".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "nothing",
            Self::Scalar { .. } => "a scalar",
            Self::Seq { .. } => "a list",
            Self::Map { .. } => "a mapping",
        }
    }
}

/// Shows the shape and lines only: scalar text may be a secret.
impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => f.write_str("Null"),
            Self::Scalar { line, .. } => write!(f, "Scalar(line {line})"),
            Self::Seq { items, line } => f
                .debug_struct("Seq")
                .field("line", line)
                .field("items", items)
                .finish(),
            Self::Map { entries, line } => {
                let keys: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
                f.debug_struct("Map")
                    .field("line", line)
                    .field("keys", &keys)
                    .finish()
            }
        }
    }
}

/// One `key: value` pair of a mapping.
pub(crate) struct Entry {
    /// The key text.
    pub(crate) key: String,
    /// The key's line (1-based).
    pub(crate) line: usize,
    /// The value.
    pub(crate) value: Node,
}

/// Malformed YAML, or a YAML feature config files do not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// 1-based line.
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) message: String,
}

/// Parses one YAML document; `Ok(Node::Null)` for an empty file.
///
/// # Errors
/// The first syntax error, alias, complex key, extra document or over-deep nesting.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    let mut reader = Reader {
        parser: Parser::new_from_str(text),
        last_line: 1,
    };
    let mut root = Node::Null;
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
                        line: span.start.line(),
                        message: "only one YAML document is allowed in a config file".to_owned(),
                    });
                }
                let (event, span) = reader.next()?;
                root = reader.node(event, span, 0)?;
            }
            other => {
                return Err(YamlError {
                    line: span.start.line(),
                    message: format!("unexpected YAML event {}", describe(&other)),
                });
            }
        }
    }
}

/// Deepest nesting accepted; config files need four levels.
const MAX_DEPTH: usize = 16;

struct Reader<'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    last_line: usize,
}

impl<'input> Reader<'input> {
    fn next(&mut self) -> Result<(Event<'input>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => {
                self.last_line = span.start.line();
                Ok((event, span))
            }
            Some(Err(err)) => Err(YamlError {
                line: err.marker().line(),
                message: format!("invalid YAML: {}", err.info()),
            }),
            None => Err(YamlError {
                line: self.last_line,
                message: "invalid YAML: unexpected end of input".to_owned(),
            }),
        }
    }

    fn node(&mut self, event: Event<'input>, span: Span, depth: usize) -> Result<Node, YamlError> {
        let line = span.start.line();
        if depth > MAX_DEPTH {
            return Err(YamlError {
                line,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        match event {
            Event::Scalar(text, style, _, _) => Ok(scalar(text, style, line)),
            Event::SequenceStart(_, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        return Ok(Node::Seq { items, line });
                    }
                    items.push(self.node(event, span, depth + 1)?);
                }
            }
            Event::MappingStart(_, _) => {
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    let key_line = span.start.line();
                    let key = match event {
                        Event::MappingEnd => return Ok(Node::Map { entries, line }),
                        Event::Scalar(text, _, _, _) => text.into_owned(),
                        other => {
                            return Err(YamlError {
                                line: key_line,
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
                        line: key_line,
                        value,
                    });
                }
            }
            Event::Alias(_) => Err(YamlError {
                line,
                message: "YAML aliases (*name) are not supported in the config file".to_owned(),
            }),
            other => Err(YamlError {
                line,
                message: format!("unexpected YAML event {}", describe(&other)),
            }),
        }
    }
}

fn scalar(text: Cow<'_, str>, style: ScalarStyle, line: usize) -> Node {
    let is_quoted = !matches!(style, ScalarStyle::Plain);
    if !is_quoted && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
        return Node::Null;
    }
    Node::Scalar {
        text: Zeroizing::new(text.into_owned()),
        is_quoted,
        line,
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

    fn map(node: &Node) -> &[Entry] {
        match node {
            Node::Map { entries, .. } => entries,
            _ => panic!("expected a mapping, found {}", node.kind()),
        }
    }

    #[test]
    fn keys_and_values_carry_their_lines() {
        let root = parse("# comment\ngate:\n  port: 3100\n  bind: \"::1\"\n").unwrap();
        let gate = &map(&root)[0];
        assert_eq!((gate.key.as_str(), gate.line), ("gate", 2));
        let inner = map(&gate.value);
        assert_eq!((inner[0].key.as_str(), inner[0].line), ("port", 3));
        assert_eq!(inner[1].line, 4);
        match &inner[1].value {
            Node::Scalar {
                text,
                is_quoted,
                line,
            } => {
                assert_eq!(text.as_str(), "::1");
                assert!(*is_quoted);
                assert_eq!(*line, 4);
            }
            other => panic!("{}", other.kind()),
        }
    }

    #[test]
    fn flow_collections_and_nulls_parse() {
        let root = parse("vault: { name: prod }\nlist: [a, b]\nempty:\n").unwrap();
        let entries = map(&root);
        assert_eq!(entries.len(), 3);
        assert!(matches!(&entries[1].value, Node::Seq { items, .. } if items.len() == 2));
        assert!(matches!(entries[2].value, Node::Null));
    }

    #[test]
    fn duplicates_are_kept_for_the_walker() {
        let root = parse("a: 1\na: 2\n").unwrap();
        assert_eq!(map(&root).len(), 2);
    }

    #[test]
    fn empty_input_is_null() {
        assert!(matches!(parse("").unwrap(), Node::Null));
        assert!(matches!(parse("# only a comment\n").unwrap(), Node::Null));
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let err = parse("gate:\n  port: 1\n bind: [\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{err:?}");
        assert!(err.line >= 2, "{err:?}");
    }

    #[test]
    fn aliases_and_second_documents_are_refused() {
        assert!(
            parse("a: &x 1\nb: *x\n")
                .unwrap_err()
                .message
                .contains("aliases")
        );
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("one YAML document")
        );
        assert!(parse("? [a]\n: 1\n").unwrap_err().message.contains("keys"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(parse(&deep).unwrap_err().message.contains("nesting"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "[a-z:\\[\\]{}, \n\"'&*!|>#-]{0,64}") {
            let _ = parse(&text);
        }
    }
}
