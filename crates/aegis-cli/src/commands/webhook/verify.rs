//! `aegis webhook verify-signature`: checks a received delivery the way SPEC.md §18.2 tells
//! receivers to, so a receiver can test its setup against Aegis's own rules.

use std::io::Read as _;

use secrecy::{ExposeSecret as _, SecretString};

use aegis_core::webhook::signature;

use super::now;
use crate::cli::WebhookVerifyArgs;
use crate::error::CliError;
use crate::output;
use crate::secret_input::read_secret;

/// Verifies one delivery's signature and timestamp; exit 1 when either is not accepted.
pub(super) fn verify_signature(args: &WebhookVerifyArgs) -> Result<(), CliError> {
    if args.secret == "-" && args.body_file.is_none() {
        return Err(CliError::usage(
            "--secret - and the body cannot both come from standard input",
        )
        .with_hint("pass the body with --body-file <path>"));
    }
    let secret: SecretString = read_secret(Some(&args.secret), "--secret")?;
    let body = match &args.body_file {
        Some(path) => std::fs::read(path).map_err(|e| CliError::io("read", path, &e))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|_| CliError::usage("cannot read the body from standard input"))?;
            body
        }
    };
    let now_unix = now().as_millis().div_euclid(1000);
    // Verification is the one place the receiver's secret is exposed.
    signature::verify(
        secret.expose_secret().as_bytes(),
        &args.timestamp,
        &body,
        &args.signature,
        now_unix,
    )
    .map_err(|e| {
        CliError::failure(e.code(), format!("signature not accepted: {e}"))
            .with_hint("use the exact raw body and the X-Aegis-Timestamp header received")
    })?;
    output::line("ok: signature valid");
    Ok(())
}
