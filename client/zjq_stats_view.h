/*  zjq_stats_view.h: the text view of a broker's STATS map, shared by
    `zjq stats` (printed once) and `zjq top` (redrawn every second).

    The view is three blocks: the broker (uptime, memory, journal, job
    counts, rates, error counters), one line per queue (sorted by name) and
    one line per worker (sorted by id). Its tables fit 80 columns; numbers
    that would not fit are shortened (12.3k, 4.5M) and `--json` has the
    exact values.                                                          */

#ifndef ZJQ_STATS_VIEW_H_INCLUDED
#define ZJQ_STATS_VIEW_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

//  Render the view of a STATS map as lines ending in '\n'. With width > 0
//  every line is cut to that many bytes; with max_lines > 0 at most that
//  many lines are kept (the last one says how many were left out).
//  Returns a malloc'd text, or NULL if out of memory.
char *
    zjq_stats_view_render (const msgpack_object *stats, int width, int max_lines);

#endif
