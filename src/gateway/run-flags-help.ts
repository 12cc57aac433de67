/** The `lp-gateway run` flags' help (re-exported by config-load.ts); no imports, so `--help` stays light. */
export const RUN_FLAGS_HELP = `Options (flags override LPGW_* environment variables, which override the config file):
  --config FILE            TOML config file (default: $LPGW_CONFIG, else ./config/gateway.toml if present)
  --data-dir DIR           keys and database directory (data_dir; default ./data)
  --http HOST:PORT         HTTP API listener (http.listen; default 127.0.0.1:8080)
  --lp-tcp HOST:PORT       LP TCP listener (lp.tcp; default 0.0.0.0:41264)
  --lp-udp HOST:PORT|off   LP UDP listener, 'off' disables UDP (lp.udp; default 0.0.0.0:51264)
  --mode entry|exit|both   gateway role (mode; default both)
  --mock-ecash             accept any well-formed credential (registration.credential_verifier = "mock")
  --peer URL#IDENTITY      descriptor URL of another gateway pinned to its identity key (64 hex); repeatable,
                           added to directory.peers
  --trust-on-first-use     accept unpinned peers on their self-signed descriptor alone (localnets only;
                           directory.trust_on_first_use)
  --topology FILE          topology file listing gateways (directory.topology)
  --announce-host HOST     host published in the signed descriptor (lp.announce_host)
  --wg-interface IFACE     WireGuard interface to apply registered peers to (wireguard.interface)
  --wg-manage              create and configure that interface: kernel WireGuard, else wireguard-go
                           (wireguard.manage = true; root or CAP_NET_ADMIN)
  --collector              attach the eBPF collector (collector.enabled = true)
  --collector-iface IFACE  interface the collector attaches to (collector.iface; default lo)
  --log-level LEVEL        fatal|error|warn|info|debug|trace|silent (log.level; default info)`;
