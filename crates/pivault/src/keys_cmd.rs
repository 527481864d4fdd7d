//! `pivault keys …`: API keys. The subcommands and their handlers live here together, so
//! that a new one is one variant and one match arm in this file.

use crate::vault_open::{open_vault, Ctx};
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Create an API key; the key is printed once.
    Create {
        /// Principal name (e.g. billing).
        #[arg(long)]
        principal: String,
        /// Comma-separated purposes it may use.
        #[arg(long, value_delimiter = ',')]
        purposes: Vec<String>,
        /// Comma-separated roles: app, admin.
        #[arg(long, value_delimiter = ',', default_value = "app")]
        roles: Vec<String>,
    },
}


/// Runs a `pivault keys …` command; its exit status.
pub async fn run_keys(ctx: &Ctx, cmd: KeysCmd) -> Result<i32> {
    match cmd {
        KeysCmd::Create {
            principal,
            purposes,
            roles,
        } => {
            let vault = open_vault(ctx).await?;
            let token = vault
                .create_api_key("cli:keys", &principal, &roles, &purposes)
                .await?;
            println!("{token}");
            eprintln!(
                "API key for principal {principal} (roles {}; purposes {}). It is shown once.",
                roles.join(","),
                purposes.join(",")
            );
            Ok(0)
        }
    }
}
