//! Running an operation until a cancellation token fires.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::{Error, ErrorKind, Result};

/// Runs `operation` until `token` fires, then gives up with `Canceled` (at
/// once, without polling `operation`, if it has fired already). The token
/// is checked first on every poll, so a fired token wins over a ready
/// operation. The error carries no operation or target; the caller names
/// them.
pub async fn until_cancelled<T>(
    token: &CancellationToken,
    operation: impl Future<Output = Result<T>>,
) -> Result<T> {
    let done = if token.is_cancelled() {
        None
    } else {
        tokio::select! {
            biased;
            () = token.cancelled() => None,
            done = operation => Some(done),
        }
    };
    done.unwrap_or_else(|| Err(Error::new(ErrorKind::Canceled)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_fired_token_wins_without_polling_the_operation() {
        let token = CancellationToken::new();
        token.cancel();
        let err = until_cancelled(&token, std::future::pending::<Result<()>>())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Canceled);
    }
}
