//! The names of the bindings ledge's code uses, as enums: the set the design declares.

macro_rules! binding_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The binding's name in `ledge.toml`.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

binding_enum!(
    /// Object buckets.
    BucketBinding {
        Documents => "documents",
        Recordings => "recordings",
        Archives => "archives",
        ProfileDocuments => "profile-documents",
        Artifacts => "artifacts",
    }
);

binding_enum!(
    /// KV namespaces.
    KvBinding {
        Sessions => "sessions",
        EmbeddingCache => "embedding-cache",
    }
);

binding_enum!(
    /// Queues (each has a `<name>-dlq` dead-letter queue in the default configuration).
    QueueBinding {
        GithubEvents => "github-events",
        RepositoryIndexing => "repository-indexing",
        FileIndexing => "file-indexing",
        EmbeddingGeneration => "embedding-generation",
        BugAnalysis => "bug-analysis",
        Notifications => "notifications",
    }
);

binding_enum!(
    /// Durable-object namespaces, by class name.
    DurableBinding {
        IndexingCoordinator => "IndexingCoordinator",
        ChatSession => "ChatSession",
    }
);
