/**
 * The blueprint's firewall → /etc/nftables.conf for Debian's nftables unit: one `inet filter`
 * table whose input chain drops what it does not accept. Accepted always: replies, loopback,
 * ICMP, the DHCP clients (68/udp, 546/udp: firewalld's `dhcpv6-client`) and ssh (22/tcp) —
 * what firewalld's default zone opens — then each port and each enabled service asked for.
 *
 * Services are firewalld's names (composer passes them to firewalld, whose service files say
 * which ports each opens). imgmake has no firewalld: `SERVICES` below holds the ports of the
 * common ones, from firewalld's own service definitions; a name not in it is refused at its
 * line (write the port instead). A disabled service closes what the base opens (`ssh`,
 * `dhcpv6-client`); disabling one that is not open leaves nothing to do, which is what it asks.
 *
 * Zones (firewalld binds sources and interfaces to zones with their own rules) have no
 * equivalent in a single input chain and stay refused (support.ts).
 *
 * Pure.
 */

/** A port or range and its protocol, as nft writes it: `tcp dport 80`. */
export interface PortRule {
  protocol: 'tcp' | 'udp' | 'sctp' | 'dccp';
  /** A number, `LOW-HIGH`, or a name nft resolves from the image's /etc/services. */
  port: string;
}

const t = (port: string): PortRule => ({ protocol: 'tcp', port });
const u = (port: string): PortRule => ({ protocol: 'udp', port });

/** firewalld service name → the ports its service file opens (the common ones; others are refused). */
export const SERVICES: Readonly<Record<string, readonly PortRule[]>> = {
  ssh: [t('22')],
  http: [t('80')],
  https: [t('443')],
  http3: [u('443')],
  dns: [t('53'), u('53')],
  'dns-over-tls': [t('853')],
  ntp: [u('123')],
  dhcp: [u('67')],
  dhcpv6: [u('547')],
  'dhcpv6-client': [u('546')],
  smtp: [t('25')],
  smtps: [t('465')],
  'smtp-submission': [t('587')],
  imap: [t('143')],
  imaps: [t('993')],
  pop3: [t('110')],
  pop3s: [t('995')],
  ldap: [t('389')],
  ldaps: [t('636')],
  kerberos: [t('88'), u('88')],
  mysql: [t('3306')],
  postgresql: [t('5432')],
  redis: [t('6379')],
  mongodb: [t('27017')],
  nfs: [t('2049')],
  rsyncd: [t('873'), u('873')],
  git: [t('9418')],
  cockpit: [t('9090')],
  'vnc-server': [t('5900-5903')],
  rdp: [t('3389')],
  syslog: [u('514')],
  'syslog-tls': [t('6514')],
  openvpn: [u('1194')],
  wireguard: [u('51820')],
  mqtt: [t('1883')],
  'mqtt-tls': [t('8883')],
  'kube-apiserver': [t('6443')],
  'etcd-client': [t('2379')],
  'etcd-server': [t('2380')],
  grafana: [t('3000')],
  prometheus: [t('9090')],
  'prometheus-node-exporter': [t('9100')],
  elasticsearch: [t('9200'), t('9300')],
  'zabbix-agent': [t('10050')],
  'zabbix-server': [t('10051')],
};

/** What the base ruleset accepts that a disabled service may close. */
const BASE = ['ssh', 'dhcpv6-client'] as const;

export interface FirewallInput {
  /** From `ports` (parsePort's results), in blueprint order. */
  ports: PortRule[];
  /** Enabled and disabled service names, already known to `SERVICES`. */
  enabled: string[];
  disabled: string[];
}

/** The whole /etc/nftables.conf. */
export function nftablesConf(f: FirewallInput): string {
  const closed = new Set(f.disabled.filter((s) => (BASE as readonly string[]).includes(s)));
  const rules: string[] = [];
  const seen = new Set<string>();
  const add = (r: PortRule): void => {
    const line = `    ${r.protocol} dport ${r.port} accept`;
    if (!seen.has(line)) rules.push(line);
    seen.add(line);
  };
  for (const p of f.ports) add(p);
  for (const s of f.enabled) for (const r of SERVICES[s] ?? []) add(r);
  const dhcp = closed.has('dhcpv6-client') ? 'udp dport 68 accept' : 'udp dport { 68, 546 } accept';
  return `#!/usr/sbin/nft -f
# Written by imgmake from the blueprint's firewall ports.
flush ruleset

table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif lo accept
    meta l4proto { icmp, ipv6-icmp } accept
    ${dhcp}
${closed.has('ssh') ? '' : '    tcp dport 22 accept\n'}${rules.join('\n')}${rules.length ? '\n' : ''}  }
  chain forward {
    type filter hook forward priority filter; policy drop;
  }
  chain output {
    type filter hook output priority filter; policy accept;
  }
}
`;
}
