/**
 * Policy tables of the static safety check: which helpers, map types and program sections an object may
 * use, and which verdict each program type must return. Kept apart from the analysis so a reviewer can
 * read the whole policy in one screen.
 */

/** BPF helper names by id (include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER order), for error messages. */
export const HELPER_NAMES: readonly string[] = [
  'unspec', 'map_lookup_elem', 'map_update_elem', 'map_delete_elem', 'probe_read', 'ktime_get_ns', 'trace_printk',
  'get_prandom_u32', 'get_smp_processor_id', 'skb_store_bytes', 'l3_csum_replace', 'l4_csum_replace', 'tail_call',
  'clone_redirect', 'get_current_pid_tgid', 'get_current_uid_gid', 'get_current_comm', 'get_cgroup_classid',
  'skb_vlan_push', 'skb_vlan_pop', 'skb_get_tunnel_key', 'skb_set_tunnel_key', 'perf_event_read', 'redirect',
  'get_route_realm', 'perf_event_output', 'skb_load_bytes', 'get_stackid', 'csum_diff', 'skb_get_tunnel_opt',
  'skb_set_tunnel_opt', 'skb_change_proto', 'skb_change_type', 'skb_under_cgroup', 'get_hash_recalc',
  'get_current_task', 'probe_write_user', 'current_task_under_cgroup', 'skb_change_tail', 'skb_pull_data',
  'csum_update', 'set_hash_invalid', 'get_numa_node_id', 'skb_change_head', 'xdp_adjust_head', 'probe_read_str',
  'get_socket_cookie', 'get_socket_uid', 'set_hash', 'setsockopt', 'skb_adjust_room', 'redirect_map',
  'sk_redirect_map', 'sock_map_update', 'xdp_adjust_meta', 'perf_event_read_value', 'perf_prog_read_value',
  'getsockopt', 'override_return', 'sock_ops_cb_flags_set', 'msg_redirect_map', 'msg_apply_bytes', 'msg_cork_bytes',
  'msg_pull_data', 'bind', 'xdp_adjust_tail', 'skb_get_xfrm_state', 'get_stack', 'skb_load_bytes_relative',
  'fib_lookup', 'sock_hash_update', 'msg_redirect_hash', 'sk_redirect_hash', 'lwt_push_encap', 'lwt_seg6_store_bytes',
  'lwt_seg6_adjust_srh', 'lwt_seg6_action', 'rc_repeat', 'rc_keydown', 'skb_cgroup_id', 'get_current_cgroup_id',
  'get_local_storage', 'sk_select_reuseport', 'skb_ancestor_cgroup_id', 'sk_lookup_tcp', 'sk_lookup_udp',
  'sk_release', 'map_push_elem', 'map_pop_elem', 'map_peek_elem', 'msg_push_data', 'msg_pop_data', 'rc_pointer_rel',
  'spin_lock', 'spin_unlock', 'sk_fullsock', 'tcp_sock', 'skb_ecn_set_ce', 'get_listener_sock', 'skc_lookup_tcp',
  'tcp_check_syncookie', 'sysctl_get_name', 'sysctl_get_current_value', 'sysctl_get_new_value',
  'sysctl_set_new_value', 'strtol', 'strtoul', 'sk_storage_get', 'sk_storage_delete', 'send_signal',
  'tcp_gen_syncookie', 'skb_output', 'probe_read_user', 'probe_read_kernel', 'probe_read_user_str',
  'probe_read_kernel_str', 'tcp_send_ack', 'send_signal_thread', 'jiffies64', 'read_branch_records',
  'get_ns_current_pid_tgid', 'xdp_output', 'get_netns_cookie', 'get_current_ancestor_cgroup_id', 'sk_assign',
  'ktime_get_boot_ns', 'seq_printf', 'seq_write', 'sk_cgroup_id', 'sk_ancestor_cgroup_id', 'ringbuf_output',
  'ringbuf_reserve', 'ringbuf_submit', 'ringbuf_discard', 'ringbuf_query', 'csum_level', 'skc_to_tcp6_sock',
  'skc_to_tcp_sock', 'skc_to_tcp_timewait_sock', 'skc_to_tcp_request_sock', 'skc_to_udp6_sock', 'get_task_stack',
  'load_hdr_opt', 'store_hdr_opt', 'reserve_hdr_opt', 'inode_storage_get', 'inode_storage_delete', 'd_path',
  'copy_from_user', 'snprintf_btf', 'seq_printf_btf', 'skb_cgroup_classid', 'redirect_neigh', 'per_cpu_ptr',
  'this_cpu_ptr', 'redirect_peer', 'task_storage_get', 'task_storage_delete', 'get_current_task_btf', 'bprm_opts_set',
  'ktime_get_coarse_ns', 'ima_inode_hash', 'sock_from_file', 'check_mtu', 'for_each_map_elem', 'snprintf', 'sys_bpf',
  'btf_find_by_name_kind', 'sys_close', 'timer_init', 'timer_set_callback', 'timer_start', 'timer_cancel',
  'get_func_ip', 'get_attach_cookie', 'task_pt_regs', 'get_branch_snapshot', 'trace_vprintk', 'skc_to_unix_sock',
  'kallsyms_lookup_name', 'find_vma', 'loop', 'strncmp', 'get_func_arg', 'get_func_ret', 'get_func_arg_cnt',
  'get_retval', 'set_retval', 'xdp_get_buff_len', 'xdp_load_bytes', 'xdp_store_bytes', 'copy_from_user_task',
  'skb_set_tstamp', 'ima_file_hash', 'kptr_xchg', 'map_lookup_percpu_elem', 'skc_to_mptcp_sock', 'dynptr_from_mem',
  'ringbuf_reserve_dynptr', 'ringbuf_submit_dynptr', 'ringbuf_discard_dynptr', 'dynptr_read', 'dynptr_write',
  'dynptr_data', 'tcp_raw_gen_syncookie_ipv4', 'tcp_raw_gen_syncookie_ipv6', 'tcp_raw_check_syncookie_ipv4',
  'tcp_raw_check_syncookie_ipv6', 'ktime_get_tai_ns', 'user_ringbuf_drain',
];

export function helperName(id: number): string {
  const n = HELPER_NAMES[id];
  return n ? `bpf_${n} (#${id})` : `helper #${id}`;
}

/** Counting-only helpers, allowed in every mode: map access, time, random, cpu id, copying packet reads. */
export const ALLOWED_HELPERS: ReadonlySet<number> = new Set([
  1, // map_lookup_elem
  2, // map_update_elem
  3, // map_delete_elem
  5, // ktime_get_ns
  7, // get_prandom_u32
  8, // get_smp_processor_id
  26, // skb_load_bytes (copies packet bytes to the stack; cannot write)
  68, // skb_load_bytes_relative
  125, // ktime_get_boot_ns
  160, // ktime_get_coarse_ns
  188, // xdp_get_buff_len
  189, // xdp_load_bytes
]);

/** Event-output helpers: allowed only with strict: false (strict mode = counters only). */
export const OUTPUT_HELPERS: ReadonlySet<number> = new Set([25 /* perf_event_output */, 130, 131, 132, 133, 134 /* ringbuf_* */]);

/** Helpers that modify packet bytes or the skb's layout: rejected with LPGW_BPF_ERR_PACKET_WRITE. */
export const PACKET_WRITE_HELPERS: ReadonlySet<number> = new Set([
  9, // skb_store_bytes
  10, // l3_csum_replace
  11, // l4_csum_replace
  18, // skb_vlan_push
  19, // skb_vlan_pop
  31, // skb_change_proto
  32, // skb_change_type
  38, // skb_change_tail
  39, // skb_pull_data
  43, // skb_change_head
  44, // xdp_adjust_head
  50, // skb_adjust_room
  54, // xdp_adjust_meta
  65, // xdp_adjust_tail
  190, // xdp_store_bytes
]);

export const MAP_TYPE_NAMES: readonly string[] = [
  'UNSPEC', 'HASH', 'ARRAY', 'PROG_ARRAY', 'PERF_EVENT_ARRAY', 'PERCPU_HASH', 'PERCPU_ARRAY', 'STACK_TRACE',
  'CGROUP_ARRAY', 'LRU_HASH', 'LRU_PERCPU_HASH', 'LPM_TRIE', 'ARRAY_OF_MAPS', 'HASH_OF_MAPS', 'DEVMAP', 'SOCKMAP',
  'CPUMAP', 'XSKMAP', 'SOCKHASH', 'CGROUP_STORAGE', 'REUSEPORT_SOCKARRAY', 'PERCPU_CGROUP_STORAGE', 'QUEUE', 'STACK',
  'SK_STORAGE', 'DEVMAP_HASH', 'STRUCT_OPS', 'RINGBUF', 'INODE_STORAGE', 'TASK_STORAGE', 'BLOOM_FILTER',
  'USER_RINGBUF', 'CGRP_STORAGE', 'ARENA',
];

export function mapTypeName(t: number): string {
  return `BPF_MAP_TYPE_${MAP_TYPE_NAMES[t] ?? `#${t}`}`;
}

export const MapType = { HASH: 1, ARRAY: 2, PERF_EVENT_ARRAY: 4, PERCPU_HASH: 5, PERCPU_ARRAY: 6, LRU_HASH: 9, LRU_PERCPU_HASH: 10, RINGBUF: 27 } as const;

/** Plain counter storage. Redirect targets (DEVMAP, CPUMAP, XSKMAP, SOCKMAP…) and PROG_ARRAY are never allowed. */
export const ALLOWED_MAP_TYPES: ReadonlySet<number> = new Set([
  MapType.HASH,
  MapType.ARRAY,
  MapType.PERCPU_HASH,
  MapType.PERCPU_ARRAY,
  MapType.LRU_HASH,
  MapType.LRU_PERCPU_HASH,
]);

/** Output maps: only with strict: false. */
export const OUTPUT_MAP_TYPES: ReadonlySet<number> = new Set([MapType.PERF_EVENT_ARRAY, MapType.RINGBUF]);

export const ProgramKind = { TC: 'tc', XDP: 'xdp', SOCKET: 'socket', CGROUP_SKB: 'cgroup_skb' } as const;
export type ProgramKind = (typeof ProgramKind)[keyof typeof ProgramKind];

export interface SectionPolicy {
  kind: ProgramKind;
  /** The only value an exit may return: "pass, and let the rest of the chain decide". */
  passVerdict: number;
  /** ctx offsets whose load yields a packet pointer (data, data_end, data_meta). */
  packetPointerFields: readonly number[];
  /** whether the collector's loader can load and attach this kind */
  loadable: boolean;
}

const SKB_PACKET_FIELDS = [76, 80, 140]; // __sk_buff.data, data_end, data_meta
const XDP_PACKET_FIELDS = [0, 4, 8]; // xdp_md.data, data_end, data_meta

/**
 * Program sections and their pass verdicts. tc/tcx: TC_ACT_UNSPEC = TCX_NEXT (-1) — TC_ACT_OK (0) would end
 * the chain and hide packets from later programs (measured, see the collector notes). XDP: XDP_PASS (2).
 * socket filter: 0 (copy nothing to the socket; traffic unaffected). cgroup_skb: 1 (allow).
 */
export function sectionPolicy(section: string): SectionPolicy | null {
  if (section === 'tc' || section === 'classifier' || /^(tc|tcx)\/(ingress|egress)$/.test(section) || section.startsWith('classifier/')) {
    return { kind: ProgramKind.TC, passVerdict: -1, packetPointerFields: SKB_PACKET_FIELDS, loadable: true };
  }
  if (section === 'xdp' || section.startsWith('xdp/')) {
    return { kind: ProgramKind.XDP, passVerdict: 2, packetPointerFields: XDP_PACKET_FIELDS, loadable: false };
  }
  if (section === 'socket' || section.startsWith('socket/')) {
    return { kind: ProgramKind.SOCKET, passVerdict: 0, packetPointerFields: SKB_PACKET_FIELDS, loadable: false };
  }
  if (section === 'cgroup_skb/ingress' || section === 'cgroup_skb/egress') {
    return { kind: ProgramKind.CGROUP_SKB, passVerdict: 1, packetPointerFields: SKB_PACKET_FIELDS, loadable: false };
  }
  return null;
}
