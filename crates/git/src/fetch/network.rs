//! Fetching over https (or http when allowed) with gitoxide's protocol v2 client and reqwest + rustls.
//!
//! This is the thin path that cannot be exercised against GitHub from the test machine; tests drive it
//! against a local smart-HTTP server instead. The token only ever reaches gitoxide through the credential
//! callback below, which answers `Get` with the caller's credentials and ignores `Store`/`Erase`: no
//! credential helper or prompt from the host's git configuration is ever consulted.

use std::sync::atomic::AtomicBool;

use gix::credentials::helper::Action;
use gix::remote::Direction;

use crate::{CommitId, Credentials, Error, MirrorOptions, Source, Want};

pub(crate) fn fetch(
    repo: &gix::Repository,
    source: &Source,
    url: &str,
    want: &Want,
    credentials: Option<&Credentials>,
    options: &MirrorOptions,
) -> Result<(CommitId, u64), Error> {
    let repository = source.to_string();
    let local_ref = want.local_ref_name()?;
    let remote_source = match want {
        Want::Commit(commit) => commit.to_hex(),
        Want::Head | Want::Ref(_) => want.full_ref_name()?.unwrap_or_default(),
    };
    let refspec = format!("+{remote_source}:{local_ref}");
    let classify = |err: gix::Error| classify(err, &repository, want);

    let remote = repo
        .remote_at(url)
        .map_err(|err| Error::InvalidInput { field: "source", message: err.to_string() })?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs([refspec.as_str()], Direction::Fetch)
        .map_err(|err| Error::backend(format!("building the refspec {refspec}"), err))?;
    let connection = remote.connect(Direction::Fetch).map_err(classify)?;
    let account = credentials.map(|credentials| gix::sec::identity::Account {
        username: credentials.username.clone(),
        password: credentials.secret.clone(),
        oauth_refresh_token: None,
    });
    let connection = connection.with_credentials(move |action| match action {
        Action::Get(context) => Ok(account
            .clone()
            .map(|identity| gix::credentials::protocol::Outcome { identity, next: context.into() })),
        Action::Store(_) | Action::Erase(_) => Ok(None),
    });
    let prepare = connection.prepare_fetch(gix::progress::Discard, Default::default()).map_err(classify)?;
    if !matches!(want, Want::Commit(_)) && prepare.ref_map().mappings.is_empty() {
        return Err(Error::RefNotFound { repository, name: remote_source });
    }
    let prepare = match options.depth {
        Some(depth) => prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth)),
        None => prepare,
    };
    let outcome = prepare.receive(gix::progress::Discard, &AtomicBool::new(false)).map_err(classify)?;
    let received_objects = match &outcome.status {
        gix::remote::fetch::Status::Change { write_pack_bundle, .. } => {
            u64::from(write_pack_bundle.index.num_objects)
        }
        gix::remote::fetch::Status::NoPackReceived { .. } => 0,
    };

    let backend = |err: gix::Error| Error::backend(format!("reading {local_ref} after fetching"), err);
    let mut reference = repo.find_reference(local_ref.as_str()).map_err(backend)?;
    let id = reference.peel_to_id().map_err(backend)?.detach();
    let commit = crate::object::commit(repo, id)?;
    Ok((CommitId(commit.id), received_objects))
}

/// What a failed network fetch means for the caller. gitoxide reports transport failures as chains of
/// errors (often an `io::Error` wrapping the real cause); this looks through them for the facts that
/// decide the kind.
fn classify(err: gix::Error, repository: &str, want: &Want) -> Error {
    let mut facts = Facts::default();
    for cause in err.iter_errors() {
        facts.inspect(cause);
    }
    let repository = repository.to_owned();
    let class = err.dominant_class();
    if facts.credentials_refused_over_http {
        return Error::InvalidInput {
            field: "credentials",
            message: format!("credentials are only sent over https, not to {repository}"),
        };
    }
    if facts.authentication_required || class == Some(gix::error::Class::Unauthenticated) {
        return Error::AuthenticationFailed { repository };
    }
    if facts.unreachable || class == Some(gix::error::Class::Retryable) {
        return Error::Unreachable { repository, message: err.to_string() };
    }
    let text = facts.messages.join(": ");
    if text.contains("HTTP status 404") {
        return Error::RepositoryNotFound { repository, message: err.to_string() };
    }
    if let Want::Commit(commit) = want
        && (text.contains("not our ref") || text.contains("not found") || text.contains("bad object"))
    {
        return Error::CommitNotFound { repository, commit: *commit };
    }
    Error::backend(format!("fetching from {repository}"), err)
}

#[derive(Default)]
struct Facts {
    authentication_required: bool,
    credentials_refused_over_http: bool,
    unreachable: bool,
    messages: Vec<String>,
}

impl Facts {
    fn inspect(&mut self, cause: &(dyn std::error::Error + 'static)) {
        self.messages.push(cause.to_string());
        if cause.downcast_ref::<gix::protocol::transport::client::AuthenticationRequired>().is_some() {
            self.authentication_required = true;
        }
        if let Some(gix::protocol::transport::client::Error::AuthenticationRefused(_)) = cause.downcast_ref()
        {
            self.credentials_refused_over_http = true;
        }
        if let Some(inner) = cause.downcast_ref::<gix::Error>()
            && inner.dominant_class() == Some(gix::error::Class::Unauthenticated)
        {
            self.authentication_required = true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | TimedOut
                    | HostUnreachable
                    | NetworkUnreachable
                    | AddrNotAvailable
            ) {
                self.unreachable = true;
            }
            // `io::Error::source` skips the error it wraps; look at it directly.
            if let Some(wrapped) = io.get_ref() {
                self.inspect(wrapped);
            }
        }
    }
}
