//! One `Chunker` serves many threads at once and gives each the same answers as a lone caller.

use std::sync::Arc;

use ledge_chunker::{ChunkStream, Chunker};

use crate::support::{FIXTURES, fixture};

#[test]
fn chunker_is_send_and_sync_and_streams_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Chunker>();
    send::<ChunkStream<'static>>();
}

#[test]
fn many_threads_share_one_chunker() {
    let chunker = Arc::new(Chunker::default());
    let expected: Vec<_> = FIXTURES.iter().map(|name| chunker.chunk(name, &fixture(name)).unwrap()).collect();
    let expected = Arc::new(expected);
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let chunker = Arc::clone(&chunker);
            let expected = Arc::clone(&expected);
            std::thread::spawn(move || {
                for round in 0..10 {
                    // Each thread walks the fixtures in a different order so parsers of all languages are
                    // taken and given back concurrently.
                    for offset in 0..FIXTURES.len() {
                        let index = (offset + worker + round) % FIXTURES.len();
                        let name = FIXTURES[index];
                        let file = chunker.chunk(name, &fixture(name)).unwrap();
                        assert_eq!(file, expected[index], "{name}");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread");
    }
}
