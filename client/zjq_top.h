/*  zjq_top.h: the terminal of `zjq top`: a full-screen view redrawn in
    place with plain ANSI sequences (no curses).

    zjq_top_new switches the terminal to the alternate screen, hides the
    cursor and, if the input is a terminal, turns off line buffering and
    echo so single keys arrive; zjq_top_destroy puts all of that back. q (or
    Q) quits; SIGINT (Ctrl-C), SIGTERM and SIGHUP quit too, and SIGWINCH
    asks for a redraw at the new size (TIOCGWINSZ).                        */

#ifndef ZJQ_TOP_H_INCLUDED
#define ZJQ_TOP_H_INCLUDED

#include <stdbool.h>

typedef struct _zjq_top_t zjq_top_t;

//  Take over the terminal on in_fd/out_fd. Returns NULL if out of memory.
zjq_top_t *
    zjq_top_new (int in_fd, int out_fd);

//  Give the terminal back as it was; idempotent; nulls the pointer.
void
    zjq_top_destroy (zjq_top_t **self_p);

//  The fd to poll for keys, or -1 if the input is not a terminal.
int
    zjq_top_input_fd (zjq_top_t *self);

//  Read the keys waiting (never blocks). Returns true once the user asked
//  to quit (q, or a signal).
bool
    zjq_top_quit (zjq_top_t *self);

//  True once after the window size changed.
bool
    zjq_top_resized (zjq_top_t *self);

//  The window size: TIOCGWINSZ, else $LINES/$COLUMNS, else 24 x 80.
void
    zjq_top_size (zjq_top_t *self, int *rows, int *columns);

//  Clear the screen and draw the text (lines ending in '\n'), cut to the
//  window, in one write. Returns 0, or -1 if the terminal is gone.
int
    zjq_top_draw (zjq_top_t *self, const char *text);

#endif
