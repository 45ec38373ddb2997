/* Descriptors of ours kept out of the program's way (fds.c). */
#ifndef PPROFPY_FDS_H
#define PPROFPY_FDS_H

#include <sys/types.h>

#define PP_FDS_HIDDEN __attribute__((visibility("hidden")))

/* What a descriptor of ours refers to. */
struct pp_fd_id {
  dev_t dev;
  ino_t ino;
};
PP_FDS_HIDDEN long pp_fd_limit(void);
PP_FDS_HIDDEN long pp_fd_floor(void);
/* Moves fd to a high, close-on-exec number (closing the original); returns
 * the descriptor to use. */
PP_FDS_HIDDEN int pp_fd_park(int fd);
PP_FDS_HIDDEN int pp_fd_identify(int fd, struct pp_fd_id *id);
/* 1 if fd still refers to the file identified by id. */
PP_FDS_HIDDEN int pp_fd_is(int fd, const struct pp_fd_id *id);

#endif
