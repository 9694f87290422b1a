//! ledge's queue consumers: which handler consumes which queue.
//!
//! [`Consumers::build`] wires each queue that has a handler in this version to it, with the
//! consumer settings of `ledge.toml`, without starting anything; [`Consumers::run`] runs them all
//! until the shutdown future resolves, then lets every batch in flight finish.
//!
//! Today, the repository indexing pipeline of [`ledge_indexing::Pipeline`]:
//!
//! * `github-events` → [`ledge_indexing::GithubEventRouter`]: records every delivery (with
//!   [`ledge_github::EventRecorder`]) and turns pushes and repository events into indexing jobs;
//! * `repository-indexing` → [`ledge_indexing::RepositoryIndexer`];
//! * `file-indexing` → [`ledge_indexing::FileIndexer`];
//! * `embedding-generation` → [`ledge_indexing::EmbeddingGenerator`];
//!
//! and the notifications: `notifications` → [`NotificationDelivery`] (the `[notifications]`
//! settings, the queue's `retry_delay` as the first backoff step).
//!
//! The pipeline reads the platform's repository records through [`PlatformAccounts`] (the
//! `accounts` module): access tokens for fetching, the plans' indexed-files limit.
//!
//! Queues without a handler keep their messages until one exists: nothing sent is dropped.
//!
//! Invariant: this crate only wires; handlers live in the domain crates.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use ledge_config::SecretName;
use ledge_env::{Env, EnvError, QueueBinding};
use ledge_indexing::{Pipeline, PipelineError, PipelineOptions};
use ledge_platform::TargetPolicy;
use ledge_platform::notifications::delivery::{DeliveryOptions, EmailSettings, NotificationDelivery};
use ledge_queue::{BatchHandler, Consumer, ConsumerStats, QueueError};
use tokio::sync::watch;

mod accounts;
pub use accounts::PlatformAccounts;

#[derive(Debug, thiserror::Error)]
pub enum ConsumersError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("LEDGE_ENCRYPTION_KEY: {0}")]
    SealingKeys(String),
    #[error("queue consumer {queue}: {source}")]
    Queue {
        queue: &'static str,
        #[source]
        source: QueueError,
    },
}

/// The consumers of this process, built and not yet running.
pub struct Consumers {
    consumers: Vec<(&'static str, Consumer)>,
    pipeline: Arc<Pipeline>,
}

impl std::fmt::Debug for Consumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.consumers.iter().map(|(q, _)| q)).finish()
    }
}

impl Consumers {
    /// Opens the bindings the handlers need and builds one consumer per handled queue, with the
    /// consumer settings of `ledge.toml` and the pipeline's defaults.
    pub async fn build(env: &Arc<Env>) -> Result<Consumers, ConsumersError> {
        Consumers::build_with(env, PipelineOptions::default()).await
    }

    /// [`Consumers::build`] with these pipeline options (`ledge index` allows local sources).
    /// Without [`PipelineOptions::accounts`], the platform's records ([`PlatformAccounts`]) are used.
    ///
    /// The indexing coordinators' durable-object host will run on the calling runtime: build the
    /// consumers on the runtime that runs them, and let every other caller (the HTTP status routes)
    /// reach the coordinators through [`Consumers::pipeline`] — one host per durable storage.
    pub async fn build_with(env: &Arc<Env>, options: PipelineOptions) -> Result<Consumers, ConsumersError> {
        let backend = env.queue_backend().await?;
        let mut options = options;
        if options.accounts.is_none() {
            options.accounts = Some(Arc::new(PlatformAccounts::new(env.clone())?));
        }
        let pipeline = Pipeline::open(env.clone(), options)?;
        pipeline.home_coordinators_here();
        let recorder = ledge_github::EventRecorder::lazy({
            let env = env.clone();
            move || {
                let env = env.clone();
                async move { env.db().await }
            }
        });
        let notifications = notification_delivery(env).await?;
        let handlers = [
            (QueueBinding::GithubEvents, pipeline.github_events_handler(recorder)),
            (QueueBinding::RepositoryIndexing, pipeline.repository_indexing_handler()),
            (QueueBinding::FileIndexing, pipeline.file_indexing_handler()),
            (QueueBinding::EmbeddingGeneration, pipeline.embedding_generation_handler()),
            (QueueBinding::Notifications, notifications),
        ];
        let mut consumers = Vec::with_capacity(handlers.len());
        for (binding, handler) in handlers {
            let queue = binding.name();
            let consumer = Consumer::new(backend.clone(), queue, env.consumer_settings(queue)?, handler)
                .map_err(|source| ConsumersError::Queue { queue, source })?;
            consumers.push((queue, consumer));
        }
        Ok(Consumers { consumers, pipeline })
    }

    /// The indexing pipeline the consumers share (for its status and counters): hand it to the API
    /// (`AppState::provide_pipeline`) rather than opening a second one.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Each consumer's queue and live counters, for metrics.
    pub fn stats(&self) -> Vec<(&'static str, Arc<ConsumerStats>)> {
        self.consumers.iter().map(|(q, c)| (*q, c.stats())).collect()
    }

    /// Runs every consumer until `shutdown` resolves; returns once their batches in flight are done
    /// (and the indexing coordinators they called have finished).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsumersError> {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let runs = self.consumers.into_iter().map(|(queue, consumer)| {
            let mut stopped = stopped.clone();
            async move {
                tracing::info!(queue, "queue consumer started");
                let result = consumer
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
                tracing::info!(queue, "queue consumer stopped");
                result.map_err(|source| ConsumersError::Queue { queue, source })
            }
        });
        let results: Vec<Result<(), ConsumersError>> = join_all(runs).await;
        self.pipeline.shutdown().await;
        results.into_iter().collect()
    }
}

/// The `notifications` consumer, with the `[notifications]` settings and the queue's `retry_delay`.
async fn notification_delivery(env: &Arc<Env>) -> Result<Arc<dyn BatchHandler>, ConsumersError> {
    let queue = QueueBinding::Notifications;
    let settings = &env.config().notifications;
    let options = DeliveryOptions {
        policy: TargetPolicy { allow_private: settings.allow_private_targets },
        timeout: settings.delivery_timeout,
        retry_delay: env.consumer_settings(queue.name())?.retry_delay.unwrap_or_default(),
        email: settings.smtp.clone().map(|server| EmailSettings {
            server,
            password: env.config().secrets.get(SecretName::SmtpPassword).cloned(),
            from: settings.email_from.clone(),
        }),
    };
    let open = {
        let env = env.clone();
        move || {
            let env = env.clone();
            async move { env.db().await }
        }
    };
    let delivery = NotificationDelivery::new(open, env.queue(queue).await?, options);
    Ok(Arc::new(delivery))
}
