/*  replay.c: runs a libFuzzer harness over files, without libFuzzer: the
    regular build replays the committed corpus (seeds and every input that
    once crashed) through the harnesses as a normal test.

    Usage: fuzz_replay_X FILE|DIR...  (exits non-zero if a file cannot be
    read; a crash is the harness's assert or a sanitizer's report)       */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t room = 4096, size = 0;
    uint8_t *data = malloc (room);
    size_t got;
    while (data && (got = fread (data + size, 1, room - size, file)) > 0) {
        size += got;
        if (size == room) {
            uint8_t *bigger = realloc (data, room *= 2);
            if (!bigger)
                free (data);
            data = bigger;
        }
    }
    fclose (file);
    if (!data) {
        fprintf (stderr, "replay: out of memory for %s\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

int
main (int argc, char *argv [])
{
    int files = 0;
    for (int index = 1; index < argc; index++) {
        struct stat info;
        if (stat (argv [index], &info) == -1) {
            fprintf (stderr, "replay: no such file %s\n", argv [index]);
            return 1;
        }
        if (!S_ISDIR (info.st_mode)) {
            if (s_replay_file (argv [index]))
                return 1;
            files++;
            continue;
        }
        DIR *dir = opendir (argv [index]);
        struct dirent *entry;
        while (dir && (entry = readdir (dir))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [4096];
            snprintf (path, sizeof (path), "%s/%s", argv [index], entry->d_name);
            if (s_replay_file (path))
                return 1;
            files++;
        }
        if (dir)
            closedir (dir);
    }
    printf ("replayed %d inputs\n", files);
    return files? 0: 1;
}
