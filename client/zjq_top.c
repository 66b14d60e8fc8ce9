/*  zjq_top.c: the terminal of `zjq top`. See zjq_top.h.                   */

#include "zjq_top.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define S_ENTER "\033[?1049h\033[?25l"      //  alternate screen, hide the cursor
#define S_LEAVE "\033[?25h\033[?1049l"      //  show the cursor, normal screen
#define S_HOME  "\033[H\033[2J"             //  cursor home, clear

struct _zjq_top_t {
    int in_fd, out_fd;
    bool raw;                   //  termios changed: restore saved
    struct termios saved;
    struct sigaction old_int, old_term, old_hup, old_winch;
    bool quit;
};

static volatile sig_atomic_t s_quit_signal = 0;
static volatile sig_atomic_t s_resized = 0;

static void
s_on_signal (int signum)
{
    if (signum == SIGWINCH)
        s_resized = 1;
    else
        s_quit_signal = 1;
}

static void
s_write_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t written = write (fd, data, len);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        data += written;
        len -= (size_t) written;
    }
}

zjq_top_t *
zjq_top_new (int in_fd, int out_fd)
{
    zjq_top_t *self = (zjq_top_t *) calloc (1, sizeof (zjq_top_t));
    if (!self)
        return NULL;
    self->in_fd = in_fd;
    self->out_fd = out_fd;
    s_quit_signal = 0;
    s_resized = 0;
    //  No SA_RESTART: a signal interrupts poll () so the loop sees it at once
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, &self->old_int);
    sigaction (SIGTERM, &action, &self->old_term);
    sigaction (SIGHUP, &action, &self->old_hup);
    sigaction (SIGWINCH, &action, &self->old_winch);
    if (isatty (in_fd) && tcgetattr (in_fd, &self->saved) == 0) {
        struct termios raw = self->saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc [VMIN] = 0;
        raw.c_cc [VTIME] = 0;
        self->raw = tcsetattr (in_fd, TCSANOW, &raw) == 0;
    }
    s_write_all (out_fd, S_ENTER, strlen (S_ENTER));
    return self;
}

void
zjq_top_destroy (zjq_top_t **self_p)
{
    zjq_top_t *self = *self_p;
    if (!self)
        return;
    s_write_all (self->out_fd, S_LEAVE, strlen (S_LEAVE));
    if (self->raw)
        tcsetattr (self->in_fd, TCSANOW, &self->saved);
    sigaction (SIGINT, &self->old_int, NULL);
    sigaction (SIGTERM, &self->old_term, NULL);
    sigaction (SIGHUP, &self->old_hup, NULL);
    sigaction (SIGWINCH, &self->old_winch, NULL);
    free (self);
    *self_p = NULL;
}

int
zjq_top_input_fd (zjq_top_t *self)
{
    return self->raw? self->in_fd: -1;
}

bool
zjq_top_quit (zjq_top_t *self)
{
    if (s_quit_signal)
        self->quit = true;
    if (self->raw && !self->quit) {
        char keys [64];
        ssize_t got = read (self->in_fd, keys, sizeof (keys));
        for (ssize_t index = 0; index < got; index++)
            if (keys [index] == 'q' || keys [index] == 'Q')
                self->quit = true;
        if (got == 0 && !isatty (self->in_fd))
            self->quit = true;
    }
    return self->quit;
}

bool
zjq_top_resized (zjq_top_t *self)
{
    bool resized = s_resized;
    s_resized = 0;
    return resized;
}

void
zjq_top_size (zjq_top_t *self, int *rows, int *columns)
{
    struct winsize size;
    *rows = 24;
    *columns = 80;
    if (ioctl (self->out_fd, TIOCGWINSZ, &size) == 0 && size.ws_row > 0 && size.ws_col > 0) {
        *rows = size.ws_row;
        *columns = size.ws_col;
        return;
    }
    const char *lines = getenv ("LINES"), *cols = getenv ("COLUMNS");
    if (lines && atoi (lines) > 0)
        *rows = atoi (lines);
    if (cols && atoi (cols) > 0)
        *columns = atoi (cols);
}

int
zjq_top_draw (zjq_top_t *self, const char *text)
{
    int rows, columns;
    zjq_top_size (self, &rows, &columns);
    size_t max = strlen (S_HOME) + strlen (text) + (size_t) rows * 2 + 1;
    char *screen = (char *) malloc (max);
    if (!screen)
        return -1;
    size_t len = strlen (S_HOME);
    memcpy (screen, S_HOME, len);
    //  Every line cut to the width; no newline after the last row, so the
    //  screen never scrolls
    int row = 0;
    const char *line = text;
    while (*line && row < rows) {
        const char *end = strchr (line, '\n');
        size_t line_len = end? (size_t) (end - line): strlen (line);
        size_t shown = line_len < (size_t) columns? line_len: (size_t) columns;
        if (row)
            screen [len++] = '\r', screen [len++] = '\n';
        memcpy (screen + len, line, shown);
        len += shown;
        row++;
        line += line_len + (end? 1: 0);
    }
    s_write_all (self->out_fd, screen, len);
    free (screen);
    return 0;
}
