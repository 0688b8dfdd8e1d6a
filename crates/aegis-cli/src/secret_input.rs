//! Reading a secret the way SPEC.md §4.9 says: `-` or no value means standard input, read
//! without echo from a terminal; a literal value works but warns about shell history.

use std::io::{IsTerminal, Read};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::output;

/// Reads the secret given to `flag` (`--secret`): the literal value, or standard input.
///
/// # Errors
/// A usage error when the secret is empty or standard input cannot be read.
pub(crate) fn read_secret(value: Option<&str>, flag: &str) -> Result<SecretString, CliError> {
    let text = match value {
        Some(literal) if literal != "-" => {
            output::warn("secrets on the command line can end up in shell history");
            Zeroizing::new(literal.to_owned())
        }
        _ => read_stdin(flag)?,
    };
    if text.is_empty() {
        return Err(
            CliError::usage(format!("{flag}: the secret is empty")).with_hint(
                "pass the secret on standard input, e.g. printf %s \"$TOKEN\" | aegis vault add …",
            ),
        );
    }
    Ok(SecretString::from(text.to_string()))
}

fn read_stdin(flag: &str) -> Result<Zeroizing<String>, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let typed = rpassword::prompt_password("Secret (input hidden): ").map_err(|_| {
            CliError::usage(format!("{flag}: cannot read the secret from the terminal"))
        })?;
        return Ok(Zeroizing::new(typed));
    }
    let mut text = Zeroizing::new(String::new());
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|_| CliError::usage(format!("{flag}: standard input is not valid UTF-8 text")))?;
    if text.ends_with("\r\n") {
        let len = text.len() - 2;
        text.truncate(len);
    } else if text.ends_with('\n') {
        let len = text.len() - 1;
        text.truncate(len);
    }
    Ok(text)
}
