//! Back-pressure for the writer: bounds the bytes of documents handed to tantivy but not yet indexed.
//!
//! tantivy's writer queues documents for its indexing thread in a channel bounded by *batches* (10,000
//! of them, and [`replace_file`](crate::KeywordIndex::replace_file) sends one batch per file), so a
//! caller faster than the indexing thread could queue a whole repository in memory. Each queued document
//! here carries a [`Permit`] for its size; the indexing thread drops the document, hence the permit, once
//! it is indexed, and [`Staging::admit`] waits while the queued bytes are over the limit.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tantivy::TantivyDocument;
use tantivy::schema::Document;

use crate::schema::ChunkDoc;

/// How long [`Staging::admit`] waits for the indexing thread at most: if the thread has died, the writer
/// reports it on the next operation, rather than this wait lasting forever.
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Staging {
    queued: Mutex<usize>,
    drained: Condvar,
    limit: usize,
}

impl Staging {
    pub(crate) fn new(limit: usize) -> Arc<Staging> {
        Arc::new(Staging { queued: Mutex::new(0), drained: Condvar::new(), limit })
    }

    /// Waits until `bytes` more fit under the limit (or nothing is queued), then counts them as queued;
    /// the returned permits (one per size in `sizes`) give them back when dropped.
    pub(crate) fn admit(self: &Arc<Self>, sizes: &[usize]) -> Vec<Permit> {
        let bytes: usize = sizes.iter().sum();
        let queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut queued, _) = self
            .drained
            .wait_timeout_while(queued, MAX_WAIT, |queued| *queued > 0 && *queued + bytes > self.limit)
            .unwrap_or_else(PoisonError::into_inner);
        *queued += bytes;
        sizes.iter().map(|&bytes| Permit { staging: Arc::clone(self), bytes }).collect()
    }

    /// The bytes of documents queued for the indexing thread now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        *self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Some queued bytes, given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    staging: Arc<Staging>,
    bytes: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut queued = self.staging.queued.lock().unwrap_or_else(PoisonError::into_inner);
        *queued = queued.saturating_sub(self.bytes);
        self.staging.drained.notify_all();
    }
}

/// The memory a chunk takes once converted to a tantivy document: its strings (some twice, the keys
/// repeat org, repo and path) plus a small header per value.
pub(crate) fn document_size(doc: &ChunkDoc) -> usize {
    let symbol =
        doc.symbol.as_ref().map_or(0, String::len) + doc.symbols.iter().map(String::len).sum::<usize>();
    doc.text.len()
        + 3 * doc.path.len()
        + 2 * symbol
        + 3 * (doc.org.len() + doc.repo.len())
        + doc.commit.len()
        + doc.language.len()
        + doc.kind.len()
        + doc.chunk_id.len()
        + 16 * 16
}

/// A tantivy document with the permit for its bytes: tantivy's writer drops it once it is indexed.
pub(crate) struct StagedDocument {
    pub doc: TantivyDocument,
    /// Held only to be dropped with the document.
    pub _permit: Permit,
}

impl Document for StagedDocument {
    type Value<'a> = <TantivyDocument as Document>::Value<'a>;
    type FieldsValuesIter<'a> = <TantivyDocument as Document>::FieldsValuesIter<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.doc.iter_fields_and_values()
    }

    fn into_tantivy_document(self) -> TantivyDocument {
        self.doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_give_their_bytes_back_when_dropped() {
        let staging = Staging::new(100);
        let permits = staging.admit(&[30, 40]);
        assert_eq!(staging.queued(), 70);
        drop(permits);
        assert_eq!(staging.queued(), 0);
    }

    #[test]
    fn admission_waits_until_the_bytes_fit() {
        let staging = Staging::new(100);
        let first = staging.admit(&[80]);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let second = staging.admit(&[50]);
                sender.send(staging.queued()).unwrap();
                drop(second);
            });
            // The second admission cannot go through while the first holds 80 of 100 bytes.
            assert!(receiver.recv_timeout(Duration::from_millis(200)).is_err());
            drop(first);
            assert_eq!(receiver.recv().unwrap(), 50);
        });
    }

    #[test]
    fn a_batch_larger_than_the_limit_goes_through_alone() {
        let staging = Staging::new(100);
        let permits = staging.admit(&[500]);
        assert_eq!(staging.queued(), 500);
        drop(permits);
    }
}
