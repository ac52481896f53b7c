/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM lake

#if !defined(_LAKE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _LAKE_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(lake_submit,
	TP_PROTO(u32 api, u32 slot, u32 seq, bool async),
	TP_ARGS(api, slot, seq, async),
	TP_STRUCT__entry(
		__field(u32, api)
		__field(u32, slot)
		__field(u32, seq)
		__field(bool, async)
	),
	TP_fast_assign(
		__entry->api = api;
		__entry->slot = slot;
		__entry->seq = seq;
		__entry->async = async;
	),
	TP_printk("api=%u slot=%u seq=%u%s", __entry->api, __entry->slot,
		  __entry->seq, __entry->async ? " async" : "")
);

TRACE_EVENT(lake_complete,
	TP_PROTO(u32 api, u32 slot, u32 seq, int result),
	TP_ARGS(api, slot, seq, result),
	TP_STRUCT__entry(
		__field(u32, api)
		__field(u32, slot)
		__field(u32, seq)
		__field(int, result)
	),
	TP_fast_assign(
		__entry->api = api;
		__entry->slot = slot;
		__entry->seq = seq;
		__entry->result = result;
	),
	TP_printk("api=%u slot=%u seq=%u result=%d", __entry->api, __entry->slot,
		  __entry->seq, __entry->result)
);

#endif /* _LAKE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE lake_trace
#include <trace/define_trace.h>
