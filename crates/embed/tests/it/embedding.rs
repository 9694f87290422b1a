//! What `embed` promises: one unit vector of `dimensions()` per text, in order, the same every time; related
//! texts closer than unrelated ones; any text, empty or huge, without panicking; batches bounded.

use std::sync::Arc;

use ledge_embed::{EmbedError, Embedder, MAX_BATCH};

use crate::support::{dot, embedder, norm, strings};

const JSON_PARSER: &str = r#"/// Parses a JSON document from a string into a value tree.
pub fn parse_json(input: &str) -> Result<serde_json::Value, ParseError> {
    let value: serde_json::Value = serde_json::from_str(input).map_err(ParseError::Json)?;
    if !value.is_object() {
        return Err(ParseError::NotAnObject);
    }
    Ok(value)
}"#;

const TCP_CONNECT: &str = r#"/// Opens a TCP connection to the server and turns off Nagle's algorithm.
pub fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}"#;

const PASSWORD_HASH: &str = r#"def hash_password(password: str) -> str:
    """Hash a user's password with argon2id before storing it."""
    hasher = PasswordHasher(time_cost=3, memory_cost=65536)
    return hasher.hash(password)"#;

#[tokio::test]
async fn vectors_are_unit_length_of_the_model_dimensions_one_per_text_in_order() {
    let model = embedder();
    assert_eq!(model.model_id(), "potion-base-8M@int8");
    assert_eq!(model.dimensions(), 256);
    assert_eq!(model.max_batch(), MAX_BATCH);

    let texts = strings(&[JSON_PARSER, TCP_CONNECT, PASSWORD_HASH, "where are webhooks verified?"]);
    let vectors = model.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), texts.len());
    for (text, vector) in texts.iter().zip(&vectors) {
        assert_eq!(vector.len(), 256);
        assert!((norm(vector) - 1.0).abs() < 1e-5, "norm {} for {text:?}", norm(vector));
        // In order: each text's vector is the one it gets alone.
        assert_eq!(&model.embed(std::slice::from_ref(text)).await.unwrap()[0], vector);
    }
    assert!(model.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_same_texts_give_the_same_vectors_every_time_from_any_clone() {
    let model = embedder();
    let texts = strings(&[JSON_PARSER, TCP_CONNECT, PASSWORD_HASH]);
    let first = model.embed(&texts).await.unwrap();
    let shared: Arc<dyn Embedder> = Arc::new(model.clone());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (shared, texts) = (shared.clone(), texts.clone());
        tasks.push(tokio::spawn(async move { shared.embed(&texts).await.unwrap() }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), first, "bit-for-bit identical");
    }
}

#[tokio::test]
async fn a_question_is_closer_to_the_code_that_answers_it_than_to_unrelated_code() {
    let model = embedder();
    let code = strings(&[JSON_PARSER, TCP_CONNECT, PASSWORD_HASH]);
    let code = model.embed(&code).await.unwrap();
    let questions = strings(&["parse a json document", "open a tcp socket connection", "hash a password"]);
    let questions = model.embed(&questions).await.unwrap();
    for (index, question) in questions.iter().enumerate() {
        let scores: Vec<f32> = code.iter().map(|snippet| dot(question, snippet)).collect();
        let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(at, _)| at);
        assert_eq!(best, Some(index), "question {index}: scores {scores:?}");
    }
}

#[tokio::test]
async fn empty_and_huge_texts_do_not_panic() {
    let model = embedder();
    let huge_code = JSON_PARSER.repeat(100 * 1024 / JSON_PARSER.len() + 1);
    let texts = vec![
        String::new(),
        " \n\t ".to_owned(),
        // One 100 KB "word": longer than any word the tokenizer splits, so one unknown token.
        "x".repeat(100 * 1024),
        huge_code,
        "é🦀中\u{0}\u{feff} ".repeat(10_000),
    ];
    let vectors = model.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), texts.len());
    // Nothing the model knows: no direction, the zero vector (documented on `Embedder`).
    for vector in &vectors[..3] {
        assert_eq!(vector.len(), 256);
        assert!(vector.iter().all(|&x| x == 0.0));
    }
    for vector in &vectors[3..] {
        assert_eq!(vector.len(), 256);
        assert!(vector.iter().all(|x| x.is_finite()));
        assert!((norm(vector) - 1.0).abs() < 1e-5, "norm {}", norm(vector));
    }
    // A long text is cut at MAX_TOKENS: it still points where its beginning does.
    let head = model.embed(&strings(&[JSON_PARSER])).await.unwrap();
    assert!(dot(&head[0], &vectors[3]) > 0.9, "{}", dot(&head[0], &vectors[3]));
}

#[tokio::test]
async fn a_batch_over_max_batch_is_refused_with_a_typed_error() {
    let model = embedder();
    let full = vec!["fn main() {}".to_owned(); model.max_batch()];
    assert_eq!(model.embed(&full).await.unwrap().len(), model.max_batch());

    let over = vec!["fn main() {}".to_owned(); model.max_batch() + 1];
    match model.embed(&over).await {
        Err(EmbedError::BatchTooLarge { len, max }) => assert_eq!((len, max), (MAX_BATCH + 1, MAX_BATCH)),
        other => panic!("expected BatchTooLarge, got {:?}", other.map(|v| v.len())),
    }
}
