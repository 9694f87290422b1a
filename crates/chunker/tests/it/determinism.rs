//! Chunking is a pure function of path, bytes and configuration: same input, same chunks and ids. Ids move
//! only with what they cover, and the output serializes to a stable shape.

use expect_test::expect;
use ledge_chunker::{ChunkedFile, Chunker};

use crate::support::{FIXTURES, fixture};

#[test]
fn chunking_twice_gives_identical_chunks_and_ids() {
    for name in FIXTURES {
        let source = fixture(name);
        let first = Chunker::default().chunk(name, &source).unwrap();
        let second = Chunker::default().chunk(name, &source).unwrap();
        assert_eq!(first, second, "{name}");
    }
}

#[test]
fn ids_depend_on_the_path() {
    let source = fixture("go.go");
    let here = Chunker::default().chunk("a/queue.go", &source).unwrap();
    let there = Chunker::default().chunk("b/queue.go", &source).unwrap();
    assert_eq!(here.chunks.len(), there.chunks.len());
    assert!(here.chunks.iter().zip(&there.chunks).all(|(a, b)| a.id != b.id && a.text == b.text));
}

#[test]
fn editing_the_last_definition_changes_only_its_chunk_id() {
    let source = String::from_utf8(fixture("ruby.rb")).unwrap();
    let edited = source.replace("Notifications.deliver(", "Notifications.deliver!(");
    assert_ne!(source, edited);
    let before = Chunker::default().chunk("n.rb", source.as_bytes()).unwrap();
    let after = Chunker::default().chunk("n.rb", edited.as_bytes()).unwrap();
    let changed: Vec<_> = before
        .chunks
        .iter()
        .zip(&after.chunks)
        .filter(|(a, b)| a.id != b.id)
        .map(|(a, _)| a.symbol.clone())
        .collect();
    assert_eq!(changed, [Some("main".to_owned())]);
}

#[test]
fn chunked_files_serialize_to_a_stable_shape_and_back() {
    let file = Chunker::default()
        .chunk("src/add.rs", b"/// Adds.\npub fn add(a: u8, b: u8) -> u8 {\n    a + b\n}\n")
        .unwrap();
    let json = serde_json::to_string_pretty(&file).unwrap();
    expect![[r#"
        {
          "language": "rust",
          "strategy": {
            "strategy": "syntax"
          },
          "lossy_utf8": false,
          "symbols": [
            {
              "name": "add",
              "kind": "function",
              "doc": "Adds.",
              "start_line": 2,
              "end_line": 4,
              "start_byte": 10,
              "end_byte": 54
            }
          ],
          "chunks": [
            {
              "id": "f607c94ba59af5a4a2a5c0803b70698fef844a180b0fe8e16256b96d9b5ba2a7",
              "language": "rust",
              "kind": "function",
              "symbol": "add",
              "symbols": [
                "add"
              ],
              "doc": "Adds.",
              "part": null,
              "start_line": 1,
              "end_line": 4,
              "start_byte": 0,
              "end_byte": 55,
              "text": "/// Adds.\npub fn add(a: u8, b: u8) -> u8 {\n    a + b\n}\n"
            }
          ]
        }"#]]
    .assert_eq(&json);
    let back: ChunkedFile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, file);
}
