//! A small YAML node tree with source positions, built from `saphyr-parser` events.
//!
//! Scalars keep their raw text and style; the policy decoder interprets them according to the
//! type each field expects, so no information (leading `+` of a phone number, the digits of a
//! Discord id) is lost to YAML's implicit typing.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Deepest nesting accepted; a policy is at most a few levels deep.
const MAX_DEPTH: usize = 64;
/// Largest number of nodes accepted (guards against alias expansion bombs).
const MAX_NODES: usize = 200_000;

/// A position in the source: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub(crate) fn from_span(span: &Span) -> Pos {
        Pos { line: span.start.line(), column: span.start.col() + 1 }
    }
}

/// A YAML node with its position.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    /// Where the node's text starts and ends, as character indices into the source (quotes and a flow collection's
    /// brackets included; a block scalar starts at its content). An alias keeps the anchored node's spans below it.
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The content of a node.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Scalar(String, ScalarStyle),
    Seq(Vec<Node>),
    /// Entries in document order; keys are scalars (other keys are reported as errors).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short description of the node's type for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(text, ScalarStyle::Plain) if is_null(text) => "nothing (null)",
            Kind::Scalar(..) => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The key text when this node is used as a mapping key.
    pub(crate) fn key_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(text, _) => Some(text),
            _ => None,
        }
    }
}

/// Whether a plain scalar denotes null in the YAML 1.2 core schema.
pub(crate) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq(Pos, usize, usize, Vec<Node>),
    Map(Pos, usize, usize, Vec<(Node, Node)>, Option<Node>),
}

/// Where a collection's text ends: after its closing bracket (flow style: the end event spans the bracket), or
/// where its last item ends (block style: the end event is empty).
fn collection_end(span: &Span, start: usize, last: Option<&Node>) -> usize {
    if span.end.index() > span.start.index() { span.end.index() } else { last.map_or(start, |node| node.end) }
}

/// Parses one YAML document into a [`Node`]. `Ok(None)` means the stream holds no document.
pub(crate) fn parse(source: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(source);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;

    for item in &mut parser {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: Pos { line: e.marker().line(), column: e.marker().col() + 1 },
            message: e.info().to_string(),
        })?;
        let pos = Pos::from_span(&span);
        let complete: Option<(Node, usize)> = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "a policy file holds exactly one YAML document; found a second one".into(),
                    });
                }
                None
            }
            Event::Scalar(text, style, anchor, _tag) => Some((
                Node {
                    pos,
                    start: span.start.index(),
                    end: span.end.index(),
                    kind: Kind::Scalar(text.into_owned(), style),
                },
                anchor,
            )),
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(pos));
                }
                stack.push(Frame::Seq(pos, span.start.index(), anchor, Vec::new()));
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(pos));
                }
                stack.push(Frame::Map(pos, span.start.index(), anchor, Vec::new(), None));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(p, start, anchor, items)) => {
                    let end = collection_end(&span, start, items.last());
                    Some((Node { pos: p, start, end, kind: Kind::Seq(items) }, anchor))
                }
                _ => return Err(internal(pos)),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(p, start, anchor, entries, None)) => {
                    let end = collection_end(&span, start, entries.last().map(|(_, value)| value));
                    Some((Node { pos: p, start, end, kind: Kind::Map(entries) }, anchor))
                }
                _ => return Err(internal(pos)),
            },
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => {
                    nodes += count(node);
                    if nodes > MAX_NODES {
                        return Err(SyntaxError {
                            pos,
                            message: "the document is too large once aliases are expanded".into(),
                        });
                    }
                    let mut node = node.clone();
                    node.pos = pos;
                    (node.start, node.end) = (span.start.index(), span.end.index());
                    Some((node, 0))
                }
                None => {
                    return Err(SyntaxError { pos, message: "alias refers to an unknown anchor".into() });
                }
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        if let Some((node, anchor)) = complete {
            nodes += 1;
            if nodes > MAX_NODES {
                return Err(SyntaxError { pos, message: "the document is too large".into() });
            }
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq(_, _, _, items)) => items.push(node),
                Some(Frame::Map(_, _, _, entries, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
            }
        }
    }
    Ok(root)
}

fn count(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar(..) => 1,
        Kind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
    }
}

fn too_deep(pos: Pos) -> SyntaxError {
    SyntaxError { pos, message: format!("nesting deeper than {MAX_DEPTH} levels") }
}

fn internal(pos: Pos) -> SyntaxError {
    SyntaxError { pos, message: "malformed YAML event stream".into() }
}
