//! Edits `init` makes to the config file: writing the commented template, inserting or replacing
//! the single `vault.master_key` entry, pointing `gate.tls` at generated certificates. Every
//! write is atomic and leaves the file 0600; the rest of the file is left byte for byte.

use std::path::Path;

use aegis_core::names::VaultName;
use aegis_store::secure_fs;

use crate::certs::CertPaths;
use crate::error::CliError;

/// Writes a commented config file for a new installation (mode 0600; fails if it exists).
pub(crate) fn write_template(
    path: &Path,
    vault: &VaultName,
    cert: Option<&CertPaths>,
) -> Result<(), CliError> {
    let tls = match cert {
        Some(cert) => format!(
            "  tls:\n    cert: {}\n    key: {}\n",
            cert.cert.display(),
            cert.key.display()
        ),
        None => "  # tls: { cert: ./certs/aegis.crt, key: ./certs/aegis.key }\n".to_owned(),
    };
    let text = format!(
        "# Aegis configuration. Every key is optional; `aegis config show` lists them all with\n\
         # their values and sources, `aegis config validate` checks this file.\n\
         vault:\n  \
           name: {vault}\n  \
           # data_dir: .aegis          # relative to this file; AEGIS_HOME overrides it\n\
         gate:\n  \
           bind: 127.0.0.1\n  \
           port: 3100\n\
         {tls}  \
           # require_agent_auth: true\n"
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        secure_fs::create_private_dir(parent).map_err(|e| CliError::io("create", parent, &e))?;
    }
    secure_fs::write_atomic(path, text.as_bytes()).map_err(|e| CliError::io("write", path, &e))
}

/// Inserts or replaces `vault.master_key` in a block-style YAML file, touching nothing else.
pub(crate) fn set_master_key(path: &Path, key: &str) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, &e))?;
    let updated = with_master_key(&text, key).ok_or_else(|| {
        CliError::config(format!(
            "cannot add vault.master_key to {}: its vault section is not in block style",
            path.display()
        ))
        .with_hint("write the vault section as `vault:` followed by indented keys, or store the key with AEGIS_MASTER_KEY")
    })?;
    secure_fs::write_atomic(path, updated.as_bytes()).map_err(|e| CliError::io("write", path, &e))
}

/// Adds a `gate.tls` block when the file has no `gate:` section; otherwise asks the user to.
pub(crate) fn point_gate_tls(path: &Path, cert: &CertPaths) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, &e))?;
    if text.lines().any(|l| l.starts_with("gate:")) {
        crate::output::warn(format!(
            "{} already has a gate section; set gate.tls.cert: {} and gate.tls.key: {} there",
            path.display(),
            cert.cert.display(),
            cert.key.display()
        ));
        return Ok(());
    }
    let mut updated = text;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&format!(
        "gate:\n  tls:\n    cert: {}\n    key: {}\n",
        cert.cert.display(),
        cert.key.display()
    ));
    secure_fs::write_atomic(path, updated.as_bytes()).map_err(|e| CliError::io("write", path, &e))
}

/// The text with `master_key` set inside the top-level `vault:` block; `None` when the block
/// is written in flow style.
fn with_master_key(text: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 2);
    let Some(vault_at) = lines
        .iter()
        .position(|l| l.trim_end() == "vault:" || l.starts_with("vault:"))
    else {
        out.extend(lines.iter().map(|l| (*l).to_owned()));
        out.push("vault:".to_owned());
        out.push(format!("  master_key: {key}"));
        return Some(out.join("\n") + "\n");
    };
    let header = lines[vault_at];
    let after_colon = header["vault:".len()..].trim();
    if !after_colon.is_empty() && !after_colon.starts_with('#') {
        return None;
    }
    let block_end = lines[vault_at + 1..]
        .iter()
        .position(|l| !l.trim().is_empty() && !l.starts_with(' ') && !l.starts_with('#'))
        .map_or(lines.len(), |p| vault_at + 1 + p);
    let indent = lines[vault_at + 1..block_end]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or("  ".to_owned(), |l| {
            l[..l.len() - l.trim_start().len()].to_owned()
        });
    let entry = format!("{indent}master_key: {key}");
    let mut replaced = false;
    for (i, line) in lines.iter().enumerate() {
        let is_key_line = i > vault_at
            && i < block_end
            && line.starts_with(&indent)
            && line[indent.len()..].starts_with("master_key:");
        if is_key_line {
            if !replaced {
                out.push(entry.clone());
                replaced = true;
            }
        } else {
            out.push((*line).to_owned());
        }
        if i == vault_at
            && !lines[vault_at + 1..block_end]
                .iter()
                .any(|l| l.starts_with(&indent) && l[indent.len()..].starts_with("master_key:"))
        {
            out.push(entry.clone());
            replaced = true;
        }
    }
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_is_inserted_into_an_existing_vault_block() {
        let text = "# top\nvault:\n    name: prod\n    data_dir: ./state\ngate:\n  port: 3100\n";
        let updated = with_master_key(text, "KEY").expect("block style");
        assert_eq!(
            updated,
            "# top\nvault:\n    master_key: KEY\n    name: prod\n    data_dir: ./state\ngate:\n  port: 3100\n"
        );
    }

    #[test]
    fn existing_master_key_is_replaced_once() {
        let text = "vault:\n  master_key: OLD\n  name: x\n";
        assert_eq!(
            with_master_key(text, "NEW").expect("block style"),
            "vault:\n  master_key: NEW\n  name: x\n"
        );
    }

    #[test]
    fn a_vault_section_is_added_when_missing() {
        let text = "gate:\n  port: 1\n";
        assert_eq!(
            with_master_key(text, "K").expect("no vault block"),
            "gate:\n  port: 1\nvault:\n  master_key: K\n"
        );
    }

    #[test]
    fn flow_style_vault_section_is_refused() {
        assert_eq!(with_master_key("vault: { name: x }\n", "K"), None);
    }
}
