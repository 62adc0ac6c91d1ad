//! Spin's runtime configuration file (`--runtime-config-file`): the
//! operator's settings that are not the application's. This host reads
//! what it implements, `max_instance_memory` (as Spin: the command line's
//! `--max-instance-memory` wins) and `[outbound_networking]`; anything else
//! is refused rather than silently ignored.

use crate::outbound_networking::BlockedNetworks;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Linear-memory limit of each instance, in bytes.
    pub max_instance_memory: Option<usize>,
    #[serde(default)]
    outbound_networking: OutboundNetworking,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundNetworking {
    /// `"private"` and/or CIDR blocks that no outbound connection reaches.
    #[serde(default)]
    block_networks: Vec<String>,
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("runtime configuration {}", path.display()))
    }

    fn parse(text: &str) -> Result<Self> {
        let config: RuntimeConfig = toml::from_str(text)?;
        config.blocked_networks()?;
        Ok(config)
    }

    pub fn blocked_networks(&self) -> Result<BlockedNetworks> {
        BlockedNetworks::parse(&self.outbound_networking.block_networks)
            .context("[outbound_networking] block_networks")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_networks_are_read_and_checked() {
        let config =
            RuntimeConfig::parse("[outbound_networking]\nblock_networks = [\"private\", \"1.2.3.0/24\"]\n")
                .unwrap();
        let blocked = config.blocked_networks().unwrap();
        assert!(blocked.is_blocked("10.0.0.1".parse().unwrap()));
        assert!(blocked.is_blocked("1.2.3.4".parse().unwrap()));
        assert!(!blocked.is_blocked("1.2.4.4".parse().unwrap()));
        assert!(
            RuntimeConfig::parse("")
                .unwrap()
                .blocked_networks()
                .unwrap()
                .is_empty()
        );
        assert!(RuntimeConfig::parse("[outbound_networking]\nblock_networks = [\"nearby\"]\n").is_err());
        assert!(RuntimeConfig::parse("[outbound_networking]\nblock = []\n").is_err());
        assert_eq!(
            RuntimeConfig::parse("max_instance_memory = 1073741824\n")
                .unwrap()
                .max_instance_memory,
            Some(1 << 30)
        );
        assert!(RuntimeConfig::parse("[key_value_store.default]\ntype = \"spin\"\n").is_err());
    }
}
