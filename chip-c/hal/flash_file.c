/*
 * Flash HAL backend of the host program: the two NVM slots are one file (slot 0 then slot 1),
 * mirrored in memory for the mapped reads; every program is a pwrite, every sync an fsync.
 * The staging area is memory: it stands for the chip's flash staging area (protocol.md 5.3).
 * A missing or empty file (or one cut short while erased, all 0xff) is a blank chip: it is
 * erased to its full size first; a file of any other size or content is refused.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "tp/config.h"
#include "tp_hal_flash.h"

#define SLOT_SIZE (320u * 1024u) /* >= TP_NVM_HEADER + TP_NVM_BODY */

static uint8_t mirror[TP_NVM_SLOTS][SLOT_SIZE];
static uint8_t staging[TP_LINK_MAX_MESSAGE];
static int fd = -1;

int tp_flash_file_open(const char *path)
{
    struct stat st;
    int created = 0;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            return -1;
        }
        created = 1;
        memset(mirror, 0xff, sizeof(mirror));
        if (pwrite(fd, mirror, sizeof(mirror), 0) != (ssize_t)sizeof(mirror) || fsync(fd) != 0) {
            return -1;
        }
        return created;
    }
    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > (off_t)sizeof(mirror)) {
        return -1;
    }
    if (st.st_size < (off_t)sizeof(mirror)) {
        /* protocol.md 13.4: an empty file is a blank chip fresh from the fab (a tray's
         * `chip blank`); so is one whose erase was cut short, every byte of it still erased */
        size_t have = (size_t)st.st_size;
        if (pread(fd, mirror, have, 0) != (ssize_t)have) {
            return -1;
        }
        for (size_t i = 0; i < have; i++) {
            if (((const uint8_t *)mirror)[i] != 0xffu) {
                return -1;
            }
        }
        memset(mirror, 0xff, sizeof(mirror));
        if (pwrite(fd, mirror, sizeof(mirror), 0) != (ssize_t)sizeof(mirror) || fsync(fd) != 0) {
            return -1;
        }
        return 1;
    }
    if (pread(fd, mirror, sizeof(mirror), 0) != (ssize_t)sizeof(mirror)) {
        return -1;
    }
    return created;
}

size_t tp_hal_nvm_slot_size(void)
{
    return SLOT_SIZE;
}

const uint8_t *tp_hal_nvm_map(unsigned slot)
{
    return slot < TP_NVM_SLOTS ? mirror[slot] : NULL;
}

int tp_hal_nvm_erase(unsigned slot)
{
    if (slot >= TP_NVM_SLOTS || fd < 0) {
        return -1;
    }
    memset(mirror[slot], 0xff, SLOT_SIZE);
    if (pwrite(fd, mirror[slot], SLOT_SIZE, (off_t)slot * SLOT_SIZE) != (ssize_t)SLOT_SIZE) {
        return -1;
    }
    return fsync(fd) == 0 ? 0 : -1;
}

int tp_hal_nvm_program(unsigned slot, size_t offset, const uint8_t *data, size_t len)
{
    if (slot >= TP_NVM_SLOTS || fd < 0 || offset > SLOT_SIZE || len > SLOT_SIZE - offset) {
        return -1;
    }
    memcpy(mirror[slot] + offset, data, len);
    off_t at = (off_t)slot * SLOT_SIZE + (off_t)offset;
    return pwrite(fd, data, len, at) == (ssize_t)len ? 0 : -1;
}

int tp_hal_nvm_sync(unsigned slot)
{
    (void)slot;
    return fd >= 0 && fsync(fd) == 0 ? 0 : -1;
}

int tp_hal_staging_write(size_t offset, const uint8_t *data, size_t len)
{
    if (offset > sizeof(staging) || len > sizeof(staging) - offset) {
        return -1;
    }
    memcpy(staging + offset, data, len);
    return 0;
}

const uint8_t *tp_hal_staging_map(void)
{
    return staging;
}
