// See include/image_codecs.h: TIFF through libtiff 4.5 (memory I/O, per-handle error handlers, so
// nothing is printed and no global state is touched), WebP through libwebp/libwebpmux/libwebpdemux,
// HEIF through libheif 1.15, BMP parsed here. Every size is checked against the limits, with
// overflow checks, before anything is allocated.
#include "image_codecs.h"

#include <libheif/heif.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static void errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void *dup_bytes(const void *p, size_t n) {
    if (!p || n == 0) return NULL;
    void *q = malloc(n);
    if (q) memcpy(q, p, n);
    return q;
}

void fr_metadata_free(fr_metadata *m) {
    if (!m) return;
    free(m->exif); free(m->icc); free(m->xmp); free(m->iptc);
    for (int i = 0; i < m->text_count && i < 8; i++) free(m->text[i]);
    memset(m, 0, sizeof(*m));
}

/* w × h × channels × bytes, or 0 when it overflows or is beyond max_pixels. */
static size_t checked_bytes(size_t w, size_t h, size_t channels, size_t bytes, size_t max_pixels) {
    if (w == 0 || h == 0 || w > SIZE_MAX / h) return 0;
    size_t px = w * h;
    if (px > max_pixels) return 0;
    size_t per = channels * bytes;
    if (px > SIZE_MAX / per) return 0;
    return px * per;
}

static void init_image(fr_image *out) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    out->pages = 1;
    out->lossless = 1;
}

// ---------------------------------------------------------------------------------------------
// zlib
// ---------------------------------------------------------------------------------------------
int fr_inflate(const unsigned char *data, size_t size, size_t max_out, unsigned char **out, size_t *out_size) {
    *out = NULL; *out_size = 0;
    if (size > UINT32_MAX || max_out == 0) return 1;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit(&z) != Z_OK) return 1;
    size_t cap = size * 4 < 4096 ? 4096 : size * 4;
    if (cap > max_out) cap = max_out;
    unsigned char *buf = (unsigned char *)malloc(cap);
    if (!buf) { inflateEnd(&z); return 1; }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    size_t used = 0;
    int rc;
    for (;;) {
        if (used == cap) {
            if (cap >= max_out) { rc = Z_BUF_ERROR; break; }
            size_t ncap = cap > max_out / 2 ? max_out : cap * 2;
            unsigned char *nb = (unsigned char *)realloc(buf, ncap);
            if (!nb) { rc = Z_MEM_ERROR; break; }
            buf = nb; cap = ncap;
        }
        size_t room = cap - used;
        z.next_out = buf + used;
        z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        uInt before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        used += before - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK) break;
        if (z.avail_in == 0 && z.avail_out != 0) { rc = Z_DATA_ERROR; break; }   /* truncated */
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) { free(buf); return 1; }
    *out = buf; *out_size = used;
    return 0;
}

int fr_deflate(const unsigned char *data, size_t size, unsigned char **out, size_t *out_size) {
    *out = NULL; *out_size = 0;
    if (size > UINT32_MAX / 2) return 1;
    uLongf cap = compressBound((uLong)size);
    unsigned char *buf = (unsigned char *)malloc(cap);
    if (!buf) return 1;
    if (compress2(buf, &cap, data, (uLong)size, 9) != Z_OK) { free(buf); return 1; }
    *out = buf; *out_size = cap;
    return 0;
}

uint32_t fr_zlib_crc32(uint32_t crc, const unsigned char *data, size_t size) {
    uLong c = crc;
    while (size > 0) {
        uInt n = size > 0x40000000 ? 0x40000000 : (uInt)size;
        c = crc32(c, data, n);
        data += n; size -= n;
    }
    return (uint32_t)c;
}

// ---------------------------------------------------------------------------------------------
// TIFF
// ---------------------------------------------------------------------------------------------
typedef struct {
    const unsigned char *rdata;   /* reading */
    unsigned char *wdata;         /* writing: grows */
    size_t size, capacity, pos;
    int failed;
    char *err;
    size_t errlen;
    int has_err;
    int use_fd;                   /* streaming: a file descriptor instead of memory */
    int fd;
} tiff_mem;

static tmsize_t tiff_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    if (n < 0) return -1;
    if (m->use_fd) {
        size_t done = 0;
        while (done < (size_t)n) {
            ssize_t k = pread(m->fd, (char *)buf + done, (size_t)n - done, (off_t)(m->pos + done));
            if (k < 0) { if (errno == EINTR) continue; return -1; }
            if (k == 0) break;
            done += (size_t)k;
        }
        m->pos += done;
        return (tmsize_t)done;
    }
    const unsigned char *src = m->rdata ? m->rdata : m->wdata;
    if (m->pos >= m->size) return 0;
    size_t k = (size_t)n < m->size - m->pos ? (size_t)n : m->size - m->pos;
    memcpy(buf, src + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t tiff_write(thandle_t h, void *buf, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    if (m->rdata || n < 0) return -1;
    if (m->use_fd) {
        size_t done = 0;
        while (done < (size_t)n) {
            ssize_t k = pwrite(m->fd, (const char *)buf + done, (size_t)n - done, (off_t)(m->pos + done));
            if (k < 0) { if (errno == EINTR) continue; m->failed = 1; return -1; }
            done += (size_t)k;
        }
        m->pos += done;
        if (m->pos > m->size) m->size = m->pos;
        return n;
    }
    size_t need = m->pos + (size_t)n;
    if (need < m->pos) { m->failed = 1; return -1; }
    if (need > m->capacity) {
        size_t cap = m->capacity ? m->capacity : 65536;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) { m->failed = 1; return -1; }
            cap *= 2;
        }
        unsigned char *p = (unsigned char *)realloc(m->wdata, cap);
        if (!p) { m->failed = 1; return -1; }
        m->wdata = p; m->capacity = cap;
    }
    if (m->pos > m->size) memset(m->wdata + m->size, 0, m->pos - m->size);
    memcpy(m->wdata + m->pos, buf, (size_t)n);
    m->pos = need;
    if (need > m->size) m->size = need;
    return n;
}

static toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    tiff_mem *m = (tiff_mem *)h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size;
    uint64_t target = base + off;   /* off is unsigned; libtiff passes negative deltas wrapped */
    if (whence != SEEK_SET && (int64_t)off < 0) {
        uint64_t back = (uint64_t)(-(int64_t)off);
        if (back > base) return (toff_t)-1;
        target = base - back;
    }
    if (target > (uint64_t)1 << 40) return (toff_t)-1;
    m->pos = (size_t)target;
    return (toff_t)target;
}

static int tiff_close(thandle_t h) { (void)h; return 0; }
static toff_t tiff_size(thandle_t h) {
    tiff_mem *m = (tiff_mem *)h;
    if (m->use_fd) {
        struct stat st;
        if (fstat(m->fd, &st) == 0 && (uint64_t)st.st_size > m->size) m->size = (size_t)st.st_size;
    }
    return (toff_t)m->size;
}
static int tiff_map(thandle_t h, void **base, toff_t *size) { (void)h; (void)base; (void)size; return 0; }
static void tiff_unmap(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)module;
    tiff_mem *m = (tiff_mem *)user;
    if (m && !m->has_err && m->err && m->errlen) {   /* the first error is the cause */
        vsnprintf(m->err, m->errlen, fmt, ap);
        m->has_err = 1;
    }
    return 1;
}

static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)user; (void)module; (void)fmt; (void)ap;
    return 1;
}

static TIFF *tiff_open(tiff_mem *m, const char *mode) {
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, m);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, m);
    /* No single allocation inside libtiff beyond 1 GB (a strip or tile buffer, a tag array). */
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)1 << 30);
    TIFF *tif = TIFFClientOpenExt("tiff", mode, (thandle_t)m, tiff_read, tiff_write, tiff_seek, tiff_close,
                                  tiff_size, tiff_map, tiff_unmap, opts);
    TIFFOpenOptionsFree(opts);
    return tif;
}

typedef struct {
    uint32_t w, h;
    uint16_t spp, bps, photometric, planar, sampleformat, compression, orientation;
    int out_channels, out_depth;
    int use_rgba;   /* YCbCr (not JPEG): libtiff's RGBA reader */
} tiff_layout;

/* Reads and checks the first page's layout; 0 when supported, 3 with a message when not. */
static int tiff_layout_of(TIFF *tif, tiff_layout *L, char *err, size_t errlen) {
    memset(L, 0, sizeof(*L));
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &L->w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &L->h)) {
        errf(err, errlen, "TIFF without an image size");
        return 1;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &L->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &L->bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &L->planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &L->sampleformat);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &L->compression);
    if (!TIFFGetField(tif, TIFFTAG_ORIENTATION, &L->orientation) || L->orientation < 1 || L->orientation > 8) L->orientation = 1;
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &L->photometric)) {
        L->photometric = L->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    }
    if (L->w == 0 || L->h == 0) { errf(err, errlen, "TIFF image is empty (%ux%u)", L->w, L->h); return 1; }
    if (!TIFFIsCODECConfigured(L->compression)) {
        errf(err, errlen, "TIFF compression %u is not available", L->compression);
        return 3;
    }
    if (L->sampleformat == SAMPLEFORMAT_IEEEFP) { errf(err, errlen, "%u-bit floating-point TIFF samples", L->bps); return 3; }
    if (L->sampleformat != SAMPLEFORMAT_UINT && L->sampleformat != SAMPLEFORMAT_VOID) {
        errf(err, errlen, "%u-bit %s TIFF samples", L->bps, L->sampleformat == SAMPLEFORMAT_INT ? "signed integer" : "complex");
        return 3;
    }
    switch (L->photometric) {
    case PHOTOMETRIC_MINISBLACK:
    case PHOTOMETRIC_MINISWHITE:
        if (L->spp < 1 || L->spp > 2) { errf(err, errlen, "gray TIFF with %u samples per pixel", L->spp); return 3; }
        if (L->bps != 1 && L->bps != 8 && L->bps != 16) { errf(err, errlen, "%u-bit gray TIFF", L->bps); return 3; }
        if (L->bps == 1 && L->spp != 1) { errf(err, errlen, "1-bit gray TIFF with alpha"); return 3; }
        L->out_channels = L->spp;
        L->out_depth = L->bps == 16 ? 16 : 8;
        break;
    case PHOTOMETRIC_PALETTE:
        if (L->spp != 1 || (L->bps != 1 && L->bps != 2 && L->bps != 4 && L->bps != 8)) {
            errf(err, errlen, "%u-bit palette TIFF with %u samples per pixel", L->bps, L->spp);
            return 3;
        }
        L->out_channels = 3;
        L->out_depth = 8;
        break;
    case PHOTOMETRIC_YCBCR:
        if (L->compression == COMPRESSION_JPEG || L->compression == COMPRESSION_OJPEG) {
            if (L->compression == COMPRESSION_OJPEG) { errf(err, errlen, "old-style JPEG TIFF"); return 3; }
            /* libtiff's JPEG codec converts to RGB. */
            TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
            L->photometric = PHOTOMETRIC_RGB;
        } else {
            if (L->bps != 8 || L->spp != 3) { errf(err, errlen, "%u-bit YCbCr TIFF with %u samples", L->bps, L->spp); return 3; }
            L->use_rgba = 1;
            L->out_channels = 3;
            L->out_depth = 8;
            return 0;
        }
        /* fall through */
    case PHOTOMETRIC_RGB:
        if (L->spp < 3 || L->spp > 4) { errf(err, errlen, "RGB TIFF with %u samples per pixel", L->spp); return 3; }
        if (L->bps != 8 && L->bps != 16) { errf(err, errlen, "%u-bit RGB TIFF", L->bps); return 3; }
        L->out_channels = L->spp;
        L->out_depth = L->bps;
        break;
    case PHOTOMETRIC_SEPARATED: errf(err, errlen, "CMYK TIFF (photometric separated)"); return 3;
    case PHOTOMETRIC_CIELAB: case PHOTOMETRIC_ICCLAB: case PHOTOMETRIC_ITULAB: errf(err, errlen, "Lab TIFF"); return 3;
    case PHOTOMETRIC_LOGL: case PHOTOMETRIC_LOGLUV: errf(err, errlen, "LogLuv TIFF"); return 3;
    default: errf(err, errlen, "TIFF photometric interpretation %u", L->photometric); return 3;
    }
    return 0;
}

static int tiff_page_count(TIFF *tif) {
    /* TIFFNumberOfDirectories follows the chain with libtiff's loop detection; capped for the answer. */
    tdir_t n = TIFFNumberOfDirectories(tif);
    return n < 1 ? 1 : n > 65535 ? 65535 : (int)n;
}

static int tiff_begin(const unsigned char *data, size_t size, tiff_mem *m, TIFF **tif, char *err, size_t errlen) {
    memset(m, 0, sizeof(*m));
    m->rdata = data; m->size = size; m->err = err; m->errlen = errlen;
    if (size < 8 || !((data[0] == 'I' && data[1] == 'I' && data[2] == 42 && data[3] == 0) ||
                      (data[0] == 'M' && data[1] == 'M' && data[2] == 0 && data[3] == 42) ||
                      (data[0] == 'I' && data[1] == 'I' && data[2] == 43 && data[3] == 0) ||
                      (data[0] == 'M' && data[1] == 'M' && data[2] == 0 && data[3] == 43))) {
        errf(err, errlen, "not a TIFF file");
        return 1;
    }
    *tif = tiff_open(m, "rm");
    if (!*tif) {
        if (!m->has_err) errf(err, errlen, "unreadable TIFF header");
        return 1;
    }
    return 0;
}

int fr_tiff_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    tiff_mem m;
    TIFF *tif;
    if (tiff_begin(data, size, &m, &tif, err, errlen)) return 1;
    out->pages = tiff_page_count(tif);
    if (out->pages > 1) TIFFSetDirectory(tif, 0);
    tiff_layout L;
    int rc = tiff_layout_of(tif, &L, err, errlen);
    if (rc == 0) {
        out->width = (int)(L.w > 0x7fffffff ? 0x7fffffff : L.w);
        out->height = (int)(L.h > 0x7fffffff ? 0x7fffffff : L.h);
        out->channels = L.out_channels;
        out->depth = L.out_depth;
        out->orientation = L.orientation;
    }
    TIFFClose(tif);
    return rc;
}

/* Sample k (of `bps` bits) of a packed row. */
static unsigned packed_sample(const unsigned char *row, size_t k, int bps) {
    if (bps == 8) return row[k];
    size_t bit = k * (size_t)bps;
    unsigned byte = row[bit >> 3];
    unsigned shift = 8 - (unsigned)bps - (unsigned)(bit & 7);
    return (byte >> shift) & ((1u << bps) - 1);
}

/* Copies one decoded block (strip or tile: `bw` × `bh` at (x0, y0), `spb` samples per pixel in the
   block, `plane` the sample it holds when separate) into the interleaved output. */
static void tiff_place(const tiff_layout *L, const unsigned char *block, size_t block_bytes, uint32_t x0, uint32_t y0,
                       uint32_t bw, uint32_t bh, int plane, uint16_t *colormap[3], unsigned char *dst,
                       uint32_t band_y, uint32_t band_end) {
    int separate = L->planar == PLANARCONFIG_SEPARATE && L->spp > 1;
    int spb = separate ? 1 : L->spp;
    size_t row_bytes = ((size_t)bw * spb * L->bps + 7) / 8;
    int oc = L->out_channels, ob = L->out_depth / 8;
    for (uint32_t by = 0; by < bh; by++) {
        uint32_t y = y0 + by;
        if (y >= L->h || y >= band_end) break;
        if (y < band_y) continue;
        if ((size_t)(by + 1) * row_bytes > block_bytes) break;
        const unsigned char *row = block + (size_t)by * row_bytes;
        for (uint32_t bx = 0; bx < bw; bx++) {
            uint32_t x = x0 + bx;
            if (x >= L->w) break;
            size_t o = ((size_t)(y - band_y) * L->w + x) * oc;
            for (int s = 0; s < spb; s++) {
                int c = separate ? plane : s;
                size_t k = (size_t)bx * spb + s;
                if (L->photometric == PHOTOMETRIC_PALETTE) {
                    unsigned idx = packed_sample(row, k, L->bps);
                    for (int j = 0; j < 3; j++) dst[o + j] = (unsigned char)(colormap[j][idx] >> 8);
                } else if (L->bps == 16) {
                    uint16_t v;
                    memcpy(&v, row + k * 2, 2);   /* libtiff gives native byte order */
                    if (L->photometric == PHOTOMETRIC_MINISWHITE && c == 0) v = (uint16_t)(65535 - v);
                    memcpy(dst + (o + c) * ob, &v, 2);
                } else {
                    unsigned v = packed_sample(row, k, L->bps);
                    if (L->bps == 1) v = v ? 255 : 0;
                    if (L->photometric == PHOTOMETRIC_MINISWHITE && c == 0) v = 255 - v;
                    dst[o + c] = (unsigned char)v;
                }
            }
        }
    }
}

int fr_tiff_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    tiff_mem m;
    TIFF *tif;
    if (tiff_begin(data, size, &m, &tif, err, errlen)) return 1;
    /* Pages first: walking the chain may leave another directory current, and re-reading page 0
       resets the JPEG colour mode the layout sets. */
    out->pages = tiff_page_count(tif);
    if (out->pages > 1 && !TIFFSetDirectory(tif, 0)) { TIFFClose(tif); if (!m.has_err) errf(err, errlen, "unreadable first TIFF page"); return 1; }
    tiff_layout L;
    int rc = tiff_layout_of(tif, &L, err, errlen);
    if (rc != 0) { TIFFClose(tif); return rc; }
    size_t bytes = checked_bytes(L.w, L.h, (size_t)L.out_channels, (size_t)L.out_depth / 8, max_pixels);
    if (bytes == 0) { TIFFClose(tif); errf(err, errlen, "image exceeds the pixel limit"); return 2; }
    unsigned char *dst = (unsigned char *)calloc(1, bytes);
    unsigned char *block = NULL;
    if (!dst) { TIFFClose(tif); errf(err, errlen, "out of memory"); return 1; }
    int ok = 1;
    if (L.use_rgba) {
        uint32_t *rgba = (uint32_t *)malloc((size_t)L.w * L.h * 4);   /* ≤ max_pixels × 4, checked above */
        if (!rgba || !TIFFReadRGBAImageOriented(tif, L.w, L.h, rgba, ORIENTATION_TOPLEFT, 0)) ok = 0;
        if (ok) {
            for (size_t p = 0; p < (size_t)L.w * L.h; p++) {
                dst[p * 3] = (unsigned char)TIFFGetR(rgba[p]);
                dst[p * 3 + 1] = (unsigned char)TIFFGetG(rgba[p]);
                dst[p * 3 + 2] = (unsigned char)TIFFGetB(rgba[p]);
            }
        }
        free(rgba);
        L.orientation = 1;   /* the reader applied it */
    } else {
        uint16_t *colormap[3] = {NULL, NULL, NULL};
        if (L.photometric == PHOTOMETRIC_PALETTE &&
            !TIFFGetField(tif, TIFFTAG_COLORMAP, &colormap[0], &colormap[1], &colormap[2])) {
            if (!m.has_err) errf(err, errlen, "palette TIFF without a colour map");
            ok = 0;
        }
        int separate = L.planar == PLANARCONFIG_SEPARATE && L.spp > 1;
        int planes = separate ? L.spp : 1;
        if (ok && TIFFIsTiled(tif)) {
            uint32_t tw = 0, th = 0;
            TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
            TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
            tmsize_t tsize = TIFFTileSize(tif);
            if (tw == 0 || th == 0 || tsize <= 0) { if (!m.has_err) errf(err, errlen, "bad TIFF tile size"); ok = 0; }
            /* Tiles are not bounded by the image: a tile may hold no more pixels than the limit. */
            if (ok && (uint64_t)tw * th > (uint64_t)max_pixels) {
                errf(err, errlen, "TIFF tiles of %ux%u exceed the pixel limit", tw, th);
                ok = 0;
            }
            /* A tile holds at most tw × th × spp samples of ≤ 2 bytes; the buffer is what libtiff says. */
            if (ok && (block = (unsigned char *)malloc((size_t)tsize)) == NULL) { errf(err, errlen, "out of memory"); ok = 0; }
            for (int pl = 0; ok && pl < planes; pl++)
                for (uint32_t y = 0; ok && y < L.h; y += th) {
                    for (uint32_t x = 0; ok && x < L.w; x += tw) {
                        uint32_t t = TIFFComputeTile(tif, x, y, 0, (uint16_t)pl);
                        tmsize_t got = TIFFReadEncodedTile(tif, t, block, tsize);
                        if (got < 0) { ok = 0; break; }
                        tiff_place(&L, block, (size_t)got, x, y, tw, th, pl, colormap, dst, 0, L.h);
                        if (x > UINT32_MAX - tw) break;
                    }
                    if (y > UINT32_MAX - th) break;
                }
        } else if (ok) {
            uint32_t rps = 0;
            TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
            if (rps == 0 || rps > L.h) rps = L.h;
            tmsize_t ssize = TIFFStripSize(tif);
            if (ssize <= 0) { if (!m.has_err) errf(err, errlen, "bad TIFF strip size"); ok = 0; }
            if (ok && (block = (unsigned char *)malloc((size_t)ssize)) == NULL) { errf(err, errlen, "out of memory"); ok = 0; }
            for (int pl = 0; ok && pl < planes; pl++)
                for (uint32_t y = 0; ok && y < L.h; y += rps) {
                    uint32_t s = TIFFComputeStrip(tif, y, (uint16_t)pl);
                    tmsize_t got = TIFFReadEncodedStrip(tif, s, block, ssize);
                    if (got < 0) { ok = 0; break; }
                    tiff_place(&L, block, (size_t)got, 0, y, L.w, rps, pl, colormap, dst, 0, L.h);
                    if (y > UINT32_MAX - rps) break;
                }
        }
    }
    free(block);
    if (!ok) {
        if (!m.has_err && (!err || !err[0])) errf(err, errlen, "corrupt TIFF image data");
        free(dst);
        TIFFClose(tif);
        return 1;
    }
    TIFFClose(tif);
    out->width = (int)L.w;
    out->height = (int)L.h;
    out->channels = L.out_channels;
    out->depth = L.out_depth;
    out->orientation = L.orientation;
    out->pixels = dst;
    return 0;
}

static void meta_text(fr_metadata *out, TIFF *tif, int tag) {
    char *s = NULL;
    if (out->text_count >= 8 || !TIFFGetField(tif, (uint32_t)tag, &s) || !s) return;
    size_t n = strnlen(s, 65536);
    char *copy = (char *)malloc(n + 1);
    if (!copy) return;
    memcpy(copy, s, n);
    copy[n] = 0;
    out->text_tags[out->text_count] = tag;
    out->text[out->text_count++] = copy;
}

int fr_tiff_metadata(const unsigned char *data, size_t size, fr_metadata *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    tiff_mem m;
    TIFF *tif;
    if (tiff_begin(data, size, &m, &tif, err, errlen)) return 1;
    uint32_t n = 0;
    void *p = NULL;
    if (TIFFGetField(tif, TIFFTAG_ICCPROFILE, &n, &p) && p && n) { out->icc = dup_bytes(p, n); out->icc_size = out->icc ? n : 0; }
    n = 0; p = NULL;
    if (TIFFGetField(tif, TIFFTAG_XMLPACKET, &n, &p) && p && n) { out->xmp = dup_bytes(p, n); out->xmp_size = out->xmp ? n : 0; }
    n = 0; p = NULL;
    /* RichTIFFIPTC is declared UNDEFINED (LONG in older libtiffs); the count is in that type's units. */
    if (TIFFGetField(tif, TIFFTAG_RICHTIFFIPTC, &n, &p) && p && n) {
        const TIFFField *f = TIFFFieldWithTag(tif, TIFFTAG_RICHTIFFIPTC);
        size_t unit = f && TIFFFieldDataType(f) == TIFF_LONG ? 4 : 1;
        if (n <= (1u << 24)) { out->iptc = dup_bytes(p, (size_t)n * unit); out->iptc_size = out->iptc ? (size_t)n * unit : 0; }
    }
    float xr = 0, yr = 0;
    uint16_t unit = RESUNIT_INCH;
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
    if (TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xr) && TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yr) && xr > 0 && yr > 0 &&
        xr < 1e6 && yr < 1e6) {
        double k = unit == RESUNIT_CENTIMETER ? 2.54 : unit == RESUNIT_INCH ? 1.0 : 0.0;
        out->dpi_x = xr * k;
        out->dpi_y = yr * k;
    }
    static const int tags[] = {TIFFTAG_IMAGEDESCRIPTION, TIFFTAG_MAKE, TIFFTAG_MODEL, TIFFTAG_DATETIME, TIFFTAG_ARTIST,
                               TIFFTAG_COPYRIGHT};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) meta_text(out, tif, tags[i]);
    TIFFClose(tif);
    return 0;
}

/* The tags of a written page: size, samples, compression with the horizontal predictor, strips
   of about 64 KB, and the metadata. 1 when libtiff took them all. */
static int tiff_set_fields(TIFF *tif, int width, int height, int channels, int depth, int compression, const fr_metadata *meta) {
    int ok = 1;
    ok &= TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)width);
    ok &= TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)height);
    ok &= TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)channels);
    ok &= TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)depth);
    ok &= TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
    ok &= TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, channels >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    ok &= TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    ok &= TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    ok &= TIFFSetField(tif, TIFFTAG_COMPRESSION, (uint16_t)compression);
    ok &= TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
    if (channels == 2 || channels == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        ok &= TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, (uint16_t)1, &extra);
    }
    size_t row_bytes = (size_t)width * channels * (depth / 8);
    /* Strips of about 64 KB. */
    uint32_t rps = row_bytes >= 65536 ? 1 : (uint32_t)(65536 / row_bytes);
    ok &= TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
    if (meta) {
        if (meta->icc && meta->icc_size && meta->icc_size <= UINT32_MAX) ok &= TIFFSetField(tif, TIFFTAG_ICCPROFILE, (uint32_t)meta->icc_size, meta->icc);
        if (meta->xmp && meta->xmp_size && meta->xmp_size <= UINT32_MAX) ok &= TIFFSetField(tif, TIFFTAG_XMLPACKET, (uint32_t)meta->xmp_size, meta->xmp);
        if (meta->iptc && meta->iptc_size && meta->iptc_size <= (1u << 24)) {
            /* The count is in units of the type libtiff declares the tag with: bytes (UNDEFINED),
               or LONGs in older libtiffs, then padded to a multiple of 4 bytes. */
            const TIFFField *f = TIFFFieldWithTag(tif, TIFFTAG_RICHTIFFIPTC);
            if (f && TIFFFieldDataType(f) == TIFF_LONG) {
                size_t n = (meta->iptc_size + 3) / 4;
                uint32_t *words = (uint32_t *)calloc(n, 4);
                if (words) {
                    memcpy(words, meta->iptc, meta->iptc_size);
                    ok &= TIFFSetField(tif, TIFFTAG_RICHTIFFIPTC, (uint32_t)n, words);
                    free(words);
                }
            } else {
                ok &= TIFFSetField(tif, TIFFTAG_RICHTIFFIPTC, (uint32_t)meta->iptc_size, meta->iptc);
            }
        }
        if (meta->dpi_x > 0 && meta->dpi_y > 0) {
            ok &= TIFFSetField(tif, TIFFTAG_XRESOLUTION, (float)meta->dpi_x);
            ok &= TIFFSetField(tif, TIFFTAG_YRESOLUTION, (float)meta->dpi_y);
            ok &= TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
        }
        for (int i = 0; i < meta->text_count && i < 8; i++)
            if (meta->text[i]) ok &= TIFFSetField(tif, (uint32_t)meta->text_tags[i], meta->text[i]);
    }
    return ok;
}

/* Rows gathered into whole strips, each compressed in one call (TIFFWriteEncodedStrip): libtiff
   then deflates with libdeflate where it is built with it (Debian's is): a 12 MP 16-bit scan's
   encode stage took 1.1 s instead of zlib's row-at-a-time 2.4 s. The predictor works on this copy,
   not the caller's rows. */
typedef struct {
    unsigned char *buf;
    size_t row_bytes;
    uint32_t rows_per_strip, filled, strip;
} strip_rows;

static int strip_rows_init(TIFF *tif, strip_rows *s, size_t row_bytes) {
    memset(s, 0, sizeof(*s));
    uint32_t rps = 0;
    if (!TIFFGetField(tif, TIFFTAG_ROWSPERSTRIP, &rps) || rps == 0) return 0;
    s->row_bytes = row_bytes;
    s->rows_per_strip = rps;
    s->buf = (unsigned char *)malloc(row_bytes * rps);
    return s->buf != NULL;
}

/* Writes the strip gathered so far (a short last one too). 1 on success. */
static int strip_rows_flush(TIFF *tif, strip_rows *s) {
    if (s->filled == 0) return 1;
    tmsize_t n = (tmsize_t)(s->row_bytes * s->filled);
    int ok = TIFFWriteEncodedStrip(tif, s->strip, s->buf, n) == n;
    s->strip++;
    s->filled = 0;
    return ok;
}

/* Adds one row; writes the strip when it is full. 1 on success. */
static int strip_rows_push(TIFF *tif, strip_rows *s, const unsigned char *row) {
    memcpy(s->buf + (size_t)s->filled * s->row_bytes, row, s->row_bytes);
    if (++s->filled < s->rows_per_strip) return 1;
    return strip_rows_flush(tif, s);
}

int fr_tiff_encode(const unsigned char *pixels, int width, int height, int channels, int depth, int compression,
                   const fr_metadata *meta, unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    *out = NULL; *out_size = 0;
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 || (depth != 8 && depth != 16) ||
        (compression != COMPRESSION_LZW && compression != COMPRESSION_ADOBE_DEFLATE)) {
        errf(err, errlen, "invalid image parameters for TIFF");
        return 1;
    }
    tiff_mem m;
    memset(&m, 0, sizeof(m));
    m.err = err; m.errlen = errlen;
    TIFF *tif = tiff_open(&m, "w");
    if (!tif) { if (!m.has_err) errf(err, errlen, "cannot start the TIFF encoder"); free(m.wdata); return 1; }
    int ok = tiff_set_fields(tif, width, height, channels, depth, compression, meta);
    size_t row_bytes = (size_t)width * channels * (depth / 8);
    strip_rows strips = {0};
    ok = ok && strip_rows_init(tif, &strips, row_bytes);
    for (int y = 0; ok && y < height; y++) ok = strip_rows_push(tif, &strips, pixels + (size_t)y * row_bytes);
    ok = ok && strip_rows_flush(tif, &strips);
    free(strips.buf);
    if (ok && !TIFFWriteDirectory(tif)) ok = 0;
    TIFFClose(tif);
    if (!ok || m.failed) {
        if (!m.has_err) errf(err, errlen, m.failed ? "out of memory" : "TIFF encoding failed");
        free(m.wdata);
        return 1;
    }
    *out = m.wdata;
    *out_size = m.size;
    return 0;
}

/* --- Streaming: a page read band by band from a file, and written row by row to one. --- */

struct fr_tiff_stream {
    tiff_mem m;
    TIFF *tif;
    tiff_layout L;
    uint16_t *colormap[3];
    int tiled;
    uint32_t bw, bh;          /* block (strip or tile) size */
    tmsize_t block_size;
    unsigned char *block;
    uint32_t cached;          /* the block index `block` holds, or UINT32_MAX */
    tmsize_t cached_got;
    char errbuf[256];
};

static void stream_error(fr_tiff_stream *s, char *err, size_t errlen, const char *fallback) {
    if (s->m.has_err) errf(err, errlen, "%s", s->errbuf);
    else errf(err, errlen, "%s", fallback);
}

void fr_tiff_stream_close(fr_tiff_stream *s) {
    if (!s) return;
    if (s->tif) TIFFClose(s->tif);
    if (s->m.use_fd && s->m.fd >= 0) close(s->m.fd);
    free(s->block);
    free(s);
}

fr_tiff_stream *fr_tiff_stream_open(const char *path, size_t max_pixels, size_t max_block_bytes, fr_image *info, int *rc,
                                    char *err, size_t errlen) {
    init_image(info);
    *rc = 1;
    fr_tiff_stream *s = (fr_tiff_stream *)calloc(1, sizeof(*s));
    if (!s) { errf(err, errlen, "out of memory"); return NULL; }
    s->m.use_fd = 1;
    s->m.err = s->errbuf; s->m.errlen = sizeof(s->errbuf);
    s->cached = UINT32_MAX;
    s->m.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->m.fd < 0) { errf(err, errlen, "cannot open: %s", strerror(errno)); free(s); return NULL; }
    unsigned char magic[4] = {0, 0, 0, 0};
    if (pread(s->m.fd, magic, 4, 0) != 4 ||
        !((magic[0] == 'I' && magic[1] == 'I' && (magic[2] == 42 || magic[2] == 43) && magic[3] == 0) ||
          (magic[0] == 'M' && magic[1] == 'M' && magic[2] == 0 && (magic[3] == 42 || magic[3] == 43)))) {
        errf(err, errlen, "not a TIFF file");
        fr_tiff_stream_close(s);
        return NULL;
    }
    s->tif = tiff_open(&s->m, "rm");
    if (!s->tif) { stream_error(s, err, errlen, "unreadable TIFF header"); fr_tiff_stream_close(s); return NULL; }
    info->pages = tiff_page_count(s->tif);
    if (info->pages > 1 && !TIFFSetDirectory(s->tif, 0)) {
        stream_error(s, err, errlen, "unreadable first TIFF page");
        fr_tiff_stream_close(s);
        return NULL;
    }
    tiff_layout *L = &s->L;
    int lrc = tiff_layout_of(s->tif, L, err, errlen);
    if (lrc != 0) { *rc = lrc; fr_tiff_stream_close(s); return NULL; }
    size_t bytes = checked_bytes(L->w, L->h, (size_t)L->out_channels, (size_t)L->out_depth / 8, max_pixels);
    if (bytes == 0) { *rc = 2; errf(err, errlen, "image exceeds the pixel limit"); fr_tiff_stream_close(s); return NULL; }
    if (L->use_rgba) { *rc = 4; errf(err, errlen, "YCbCr TIFFs are read whole"); fr_tiff_stream_close(s); return NULL; }
    if (L->photometric == PHOTOMETRIC_PALETTE &&
        !TIFFGetField(s->tif, TIFFTAG_COLORMAP, &s->colormap[0], &s->colormap[1], &s->colormap[2])) {
        stream_error(s, err, errlen, "palette TIFF without a colour map");
        fr_tiff_stream_close(s);
        return NULL;
    }
    s->tiled = TIFFIsTiled(s->tif);
    if (s->tiled) {
        TIFFGetField(s->tif, TIFFTAG_TILEWIDTH, &s->bw);
        TIFFGetField(s->tif, TIFFTAG_TILELENGTH, &s->bh);
        s->block_size = TIFFTileSize(s->tif);
    } else {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(s->tif, TIFFTAG_ROWSPERSTRIP, &rps);
        if (rps == 0 || rps > L->h) rps = L->h;
        s->bw = L->w; s->bh = rps;
        s->block_size = TIFFStripSize(s->tif);
    }
    if (s->bw == 0 || s->bh == 0 || s->block_size <= 0) {
        stream_error(s, err, errlen, "bad TIFF strip or tile size");
        fr_tiff_stream_close(s);
        return NULL;
    }
    /* A band of one block row, decoded and placed, must stay within the bound. */
    uint64_t band = (uint64_t)L->w * s->bh * (uint64_t)L->out_channels * (uint64_t)(L->out_depth / 8);
    if ((uint64_t)s->block_size > max_block_bytes || band > max_block_bytes) {
        *rc = 4;
        errf(err, errlen, "TIFF blocks of %ux%u are too large to stream", s->bw, s->bh);
        fr_tiff_stream_close(s);
        return NULL;
    }
    s->block = (unsigned char *)malloc((size_t)s->block_size);
    if (!s->block) { errf(err, errlen, "out of memory"); fr_tiff_stream_close(s); return NULL; }
    info->width = (int)L->w;
    info->height = (int)L->h;
    info->channels = L->out_channels;
    info->depth = L->out_depth;
    info->orientation = L->orientation;
    info->block_rows = (int)s->bh;
    *rc = 0;
    return s;
}

int fr_tiff_stream_read(fr_tiff_stream *s, uint32_t y0, uint32_t rows, unsigned char *dst, size_t dst_bytes, char *err, size_t errlen) {
    tiff_layout *L = &s->L;
    if (rows == 0 || y0 >= L->h || rows > L->h - y0) { errf(err, errlen, "rows %u+%u outside the image", y0, rows); return 1; }
    size_t need = (size_t)rows * L->w * (size_t)L->out_channels * (size_t)(L->out_depth / 8);
    if (dst_bytes < need) { errf(err, errlen, "band buffer too small"); return 1; }
    memset(dst, 0, need);
    int separate = L->planar == PLANARCONFIG_SEPARATE && L->spp > 1;
    int planes = separate ? L->spp : 1;
    uint32_t end = y0 + rows;
    uint32_t first = y0 - y0 % s->bh;
    for (int pl = 0; pl < planes; pl++) {
        for (uint32_t y = first; y < end; y += s->bh) {
            for (uint32_t x = 0; x < L->w; x += s->bw) {
                uint32_t idx = s->tiled ? TIFFComputeTile(s->tif, x, y, 0, (uint16_t)pl) : TIFFComputeStrip(s->tif, y, (uint16_t)pl);
                if (idx != s->cached) {
                    tmsize_t got = s->tiled ? TIFFReadEncodedTile(s->tif, idx, s->block, s->block_size)
                                            : TIFFReadEncodedStrip(s->tif, idx, s->block, s->block_size);
                    if (got < 0) { s->cached = UINT32_MAX; stream_error(s, err, errlen, "corrupt TIFF image data"); return 1; }
                    s->cached = idx;
                    s->cached_got = got;
                }
                tiff_place(L, s->block, (size_t)s->cached_got, x, y, s->bw, s->bh, pl, s->colormap, dst, y0, end);
                if (!s->tiled || x > UINT32_MAX - s->bw) break;
            }
            if (y > UINT32_MAX - s->bh) break;
        }
    }
    return 0;
}

struct fr_tiff_writer {
    tiff_mem m;
    TIFF *tif;
    int height, next;
    size_t row_bytes;
    strip_rows strips;
    char errbuf[256];
};

static void writer_free(fr_tiff_writer *w) {
    if (!w) return;
    if (w->tif) TIFFClose(w->tif);
    if (w->m.fd >= 0) close(w->m.fd);
    free(w->strips.buf);
    free(w);
}

fr_tiff_writer *fr_tiff_writer_open(const char *path, int width, int height, int channels, int depth, int compression,
                                    const fr_metadata *meta, char *err, size_t errlen) {
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 || (depth != 8 && depth != 16) ||
        (compression != COMPRESSION_LZW && compression != COMPRESSION_ADOBE_DEFLATE)) {
        errf(err, errlen, "invalid image parameters for TIFF");
        return NULL;
    }
    fr_tiff_writer *w = (fr_tiff_writer *)calloc(1, sizeof(*w));
    if (!w) { errf(err, errlen, "out of memory"); return NULL; }
    w->m.use_fd = 1;
    w->m.err = w->errbuf; w->m.errlen = sizeof(w->errbuf);
    w->m.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->m.fd < 0) { errf(err, errlen, "cannot create: %s", strerror(errno)); free(w); return NULL; }
    /* BigTIFF past 4 GB of samples ("w8"), classic TIFF below, as libtiff's own writer chooses. */
    uint64_t samples = (uint64_t)width * (uint64_t)height * (uint64_t)channels * (uint64_t)(depth / 8);
    w->tif = tiff_open(&w->m, samples > ((uint64_t)1 << 32) - ((uint64_t)1 << 28) ? "w8" : "w");
    if (!w->tif) { errf(err, errlen, "%s", w->m.has_err ? w->errbuf : "cannot start the TIFF encoder"); writer_free(w); return NULL; }
    if (!tiff_set_fields(w->tif, width, height, channels, depth, compression, meta)) {
        errf(err, errlen, "%s", w->m.has_err ? w->errbuf : "TIFF tags refused");
        writer_free(w);
        return NULL;
    }
    w->height = height;
    w->row_bytes = (size_t)width * channels * (depth / 8);
    if (!strip_rows_init(w->tif, &w->strips, w->row_bytes)) {
        errf(err, errlen, "out of memory");
        writer_free(w);
        return NULL;
    }
    return w;
}

int fr_tiff_writer_rows(fr_tiff_writer *w, const unsigned char *rows, int count, char *err, size_t errlen) {
    if (count < 0 || count > w->height - w->next) { errf(err, errlen, "more rows than the image has"); return 1; }
    for (int i = 0; i < count; i++, w->next++) {
        if (!strip_rows_push(w->tif, &w->strips, rows + (size_t)i * w->row_bytes) || w->m.failed) {
            errf(err, errlen, "%s", w->m.has_err ? w->errbuf : "TIFF encoding failed");
            return 1;
        }
    }
    return 0;
}

int fr_tiff_writer_finish(fr_tiff_writer *w, char *err, size_t errlen) {
    int ok = w->next == w->height;
    if (!ok) errf(err, errlen, "%d of %d rows written", w->next, w->height);
    if (ok && (!strip_rows_flush(w->tif, &w->strips) || !TIFFWriteDirectory(w->tif) || w->m.failed)) {
        ok = 0;
        errf(err, errlen, "%s", w->m.has_err ? w->errbuf : "TIFF encoding failed");
    }
    TIFFClose(w->tif);
    w->tif = NULL;
    if (ok && fsync(w->m.fd) != 0) { ok = 0; errf(err, errlen, "fsync failed: %s", strerror(errno)); }
    writer_free(w);
    return ok ? 0 : 1;
}

void fr_tiff_writer_abort(fr_tiff_writer *w) { writer_free(w); }

// ---------------------------------------------------------------------------------------------
// WebP
// ---------------------------------------------------------------------------------------------
static int webp_features(const unsigned char *data, size_t size, WebPBitstreamFeatures *f, char *err, size_t errlen) {
    if (size < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WEBP", 4) != 0) {
        errf(err, errlen, "not a WebP file");
        return 1;
    }
    VP8StatusCode st = WebPGetFeatures(data, size, f);
    if (st != VP8_STATUS_OK) {
        errf(err, errlen, st == VP8_STATUS_NOT_ENOUGH_DATA ? "truncated WebP file" : "corrupt WebP header (status %d)", (int)st);
        return 1;
    }
    if (f->has_animation) { errf(err, errlen, "animated WebP"); return 3; }
    return 0;
}

int fr_webp_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    WebPBitstreamFeatures f;
    int rc = webp_features(data, size, &f, err, errlen);
    if (rc) return rc;
    out->width = f.width;
    out->height = f.height;
    out->channels = f.has_alpha ? 4 : 3;
    out->depth = 8;
    out->lossless = f.format == 2;
    return 0;
}

int fr_webp_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    int rc = fr_webp_info(data, size, out, err, errlen);
    if (rc) return rc;
    size_t bytes = checked_bytes((size_t)out->width, (size_t)out->height, (size_t)out->channels, 1, max_pixels);
    if (bytes == 0 || out->width <= 0 || out->height <= 0) { errf(err, errlen, "image exceeds the pixel limit"); return 2; }
    unsigned char *px = (unsigned char *)malloc(bytes);
    if (!px) { errf(err, errlen, "out of memory"); return 1; }
    int stride = out->width * out->channels;
    uint8_t *r = out->channels == 4 ? WebPDecodeRGBAInto(data, size, px, bytes, stride)
                                    : WebPDecodeRGBInto(data, size, px, bytes, stride);
    if (!r) { free(px); errf(err, errlen, "corrupt or truncated WebP image data"); return 1; }
    out->pixels = px;
    return 0;
}

static unsigned char *chunk_copy(const WebPData *d, size_t *n) {
    *n = 0;
    if (!d->bytes || d->size == 0) return NULL;
    unsigned char *p = (unsigned char *)dup_bytes(d->bytes, d->size);
    if (p) *n = d->size;
    return p;
}

/* EXIF as a TIFF structure: some writers keep JPEG's "Exif\0\0" in front. */
static void strip_exif_prefix(fr_metadata *out) {
    if (out->exif && out->exif_size > 6 && memcmp(out->exif, "Exif\0\0", 6) == 0) {
        memmove(out->exif, out->exif + 6, out->exif_size - 6);
        out->exif_size -= 6;
    }
}

int fr_webp_metadata(const unsigned char *data, size_t size, fr_metadata *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    WebPData wd = {data, size};
    WebPDemuxer *dmx = WebPDemux(&wd);
    if (!dmx) { errf(err, errlen, "corrupt WebP container"); return 1; }
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(dmx, "ICCP", 1, &it)) { out->icc = chunk_copy(&it.chunk, &out->icc_size); WebPDemuxReleaseChunkIterator(&it); }
    if (WebPDemuxGetChunk(dmx, "EXIF", 1, &it)) { out->exif = chunk_copy(&it.chunk, &out->exif_size); WebPDemuxReleaseChunkIterator(&it); }
    if (WebPDemuxGetChunk(dmx, "XMP ", 1, &it)) { out->xmp = chunk_copy(&it.chunk, &out->xmp_size); WebPDemuxReleaseChunkIterator(&it); }
    WebPDemuxDelete(dmx);
    strip_exif_prefix(out);
    return 0;
}

int fr_webp_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                   const fr_metadata *meta, unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    *out = NULL; *out_size = 0;
    if (width <= 0 || height <= 0 || width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION || (channels != 3 && channels != 4)) {
        errf(err, errlen, "invalid image parameters for WebP (at most %d pixels a side)", WEBP_MAX_DIMENSION);
        return 1;
    }
    uint8_t *enc = NULL;
    size_t n;
    int stride = width * channels;
    if (quality < 0) {
        n = channels == 4 ? WebPEncodeLosslessRGBA(pixels, width, height, stride, &enc) : WebPEncodeLosslessRGB(pixels, width, height, stride, &enc);
    } else {
        float q = (float)(quality > 100 ? 100 : quality);
        n = channels == 4 ? WebPEncodeRGBA(pixels, width, height, stride, q, &enc) : WebPEncodeRGB(pixels, width, height, stride, q, &enc);
    }
    if (n == 0 || !enc) { WebPFree(enc); errf(err, errlen, "WebP encoding failed"); return 1; }
    int want_meta = meta && ((meta->icc && meta->icc_size) || (meta->exif && meta->exif_size) || (meta->xmp && meta->xmp_size));
    if (!want_meta) {
        unsigned char *copy = (unsigned char *)dup_bytes(enc, n);
        WebPFree(enc);
        if (!copy) { errf(err, errlen, "out of memory"); return 1; }
        *out = copy; *out_size = n;
        return 0;
    }
    WebPMux *mux = WebPMuxNew();
    WebPData image = {enc, n}, assembled = {NULL, 0};
    int ok = mux && WebPMuxSetImage(mux, &image, 0) == WEBP_MUX_OK;
    if (ok && meta->icc && meta->icc_size) { WebPData d = {meta->icc, meta->icc_size}; ok = WebPMuxSetChunk(mux, "ICCP", &d, 0) == WEBP_MUX_OK; }
    if (ok && meta->exif && meta->exif_size) { WebPData d = {meta->exif, meta->exif_size}; ok = WebPMuxSetChunk(mux, "EXIF", &d, 0) == WEBP_MUX_OK; }
    if (ok && meta->xmp && meta->xmp_size) { WebPData d = {meta->xmp, meta->xmp_size}; ok = WebPMuxSetChunk(mux, "XMP ", &d, 0) == WEBP_MUX_OK; }
    if (ok) ok = WebPMuxAssemble(mux, &assembled) == WEBP_MUX_OK;
    WebPMuxDelete(mux);
    WebPFree(enc);
    unsigned char *copy = ok ? (unsigned char *)dup_bytes(assembled.bytes, assembled.size) : NULL;
    size_t csize = assembled.size;
    WebPDataClear(&assembled);
    if (!copy) { errf(err, errlen, ok ? "out of memory" : "cannot add metadata to the WebP file"); return 1; }
    *out = copy; *out_size = csize;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// HEIF
// ---------------------------------------------------------------------------------------------
static int heif_open(const unsigned char *data, size_t size, struct heif_context **ctx, struct heif_image_handle **h,
                     char *err, size_t errlen) {
    *ctx = NULL; *h = NULL;
    if (size < 12 || memcmp(data + 4, "ftyp", 4) != 0) { errf(err, errlen, "not a HEIF file"); return 1; }
    *ctx = heif_context_alloc();
    if (!*ctx) { errf(err, errlen, "out of memory"); return 1; }
    struct heif_error e = heif_context_read_from_memory_without_copy(*ctx, data, size, NULL);
    if (e.code != heif_error_Ok) {
        int unsupported = e.code == heif_error_Unsupported_filetype || e.code == heif_error_Unsupported_feature;
        errf(err, errlen, "%s", e.message ? e.message : "unreadable HEIF file");
        heif_context_free(*ctx); *ctx = NULL;
        return unsupported ? 3 : 1;
    }
    e = heif_context_get_primary_image_handle(*ctx, h);
    if (e.code != heif_error_Ok) {
        errf(err, errlen, "%s", e.message ? e.message : "HEIF file without a primary image");
        heif_context_free(*ctx); *ctx = NULL;
        return 1;
    }
    return 0;
}

static void heif_close(struct heif_context *ctx, struct heif_image_handle *h) {
    if (h) heif_image_handle_release(h);
    if (ctx) heif_context_free(ctx);
}

static void heif_fill_info(struct heif_image_handle *h, fr_image *out) {
    out->width = heif_image_handle_get_width(h);
    out->height = heif_image_handle_get_height(h);
    out->channels = heif_image_handle_has_alpha_channel(h) ? 4 : 3;
    int bits = heif_image_handle_get_luma_bits_per_pixel(h);
    out->depth = bits > 8 ? 16 : 8;
    out->lossless = 0;
}

int fr_heif_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    struct heif_context *ctx;
    struct heif_image_handle *h;
    int rc = heif_open(data, size, &ctx, &h, err, errlen);
    if (rc) return rc;
    heif_fill_info(h, out);
    heif_close(ctx, h);
    if (out->width <= 0 || out->height <= 0) { errf(err, errlen, "HEIF image without a size"); return 1; }
    return 0;
}

int fr_heif_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    struct heif_context *ctx;
    struct heif_image_handle *h;
    int rc = heif_open(data, size, &ctx, &h, err, errlen);
    if (rc) return rc;
    heif_fill_info(h, out);
    int bits = heif_image_handle_get_luma_bits_per_pixel(h);
    size_t bytes = out->width > 0 && out->height > 0
        ? checked_bytes((size_t)out->width, (size_t)out->height, (size_t)out->channels, (size_t)out->depth / 8, max_pixels) : 0;
    if (bytes == 0) { heif_close(ctx, h); errf(err, errlen, "image exceeds the pixel limit"); return 2; }
    /* libheif's own bound as well, so a lying ispe box cannot make it allocate much more (coded
       images are padded to whole coding blocks, hence the margin). */
    heif_context_set_maximum_image_size_limit(ctx, (out->width > out->height ? out->width : out->height) + 256);
    enum heif_chroma chroma = out->depth == 16 ? (out->channels == 4 ? heif_chroma_interleaved_RRGGBBAA_LE : heif_chroma_interleaved_RRGGBB_LE)
                                               : (out->channels == 4 ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB);
    struct heif_image *img = NULL;
    struct heif_error e = heif_decode_image(h, &img, heif_colorspace_RGB, chroma, NULL);   /* transformations applied */
    if (e.code != heif_error_Ok || !img) {
        errf(err, errlen, "%s", e.message ? e.message : "HEIF decoding failed");
        heif_close(ctx, h);
        return e.code == heif_error_Unsupported_feature || e.code == heif_error_Unsupported_filetype ? 3 : 1;
    }
    int w = heif_image_get_width(img, heif_channel_interleaved), hh = heif_image_get_height(img, heif_channel_interleaved);
    int stride = 0;
    const uint8_t *plane = heif_image_get_plane_readonly(img, heif_channel_interleaved, &stride);
    size_t row = (size_t)(w > 0 ? w : 0) * out->channels * (out->depth / 8);
    size_t need = checked_bytes((size_t)(w > 0 ? w : 0), (size_t)(hh > 0 ? hh : 0), (size_t)out->channels, (size_t)out->depth / 8, max_pixels);
    if (!plane || need == 0 || stride < 0 || (size_t)stride < row) {
        heif_image_release(img);
        heif_close(ctx, h);
        errf(err, errlen, "HEIF decoder returned an unexpected image");
        return 1;
    }
    unsigned char *px = (unsigned char *)malloc(need);
    if (!px) { heif_image_release(img); heif_close(ctx, h); errf(err, errlen, "out of memory"); return 1; }
    for (int y = 0; y < hh; y++) memcpy(px + (size_t)y * row, plane + (size_t)y * stride, row);
    if (out->depth == 16 && bits > 8 && bits < 16) {
        /* Scale b-bit samples to the full 16-bit range: v << (16 - b) | v >> (2b - 16). */
        uint16_t *s = (uint16_t *)px;
        size_t count = need / 2;
        int up = 16 - bits, down = 2 * bits - 16;
        for (size_t i = 0; i < count; i++) s[i] = (uint16_t)((s[i] << up) | (down > 0 ? s[i] >> down : 0));
    }
    heif_image_release(img);
    heif_close(ctx, h);
    out->width = w;
    out->height = hh;
    out->pixels = px;
    return 0;
}

int fr_heif_metadata(const unsigned char *data, size_t size, fr_metadata *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    struct heif_context *ctx;
    struct heif_image_handle *h;
    int rc = heif_open(data, size, &ctx, &h, err, errlen);
    if (rc) return rc;
    heif_item_id ids[16];
    int n = heif_image_handle_get_list_of_metadata_block_IDs(h, NULL, ids, 16);
    for (int i = 0; i < n && i < 16; i++) {
        const char *type = heif_image_handle_get_metadata_type(h, ids[i]);
        const char *ctype = heif_image_handle_get_metadata_content_type(h, ids[i]);
        size_t sz = heif_image_handle_get_metadata_size(h, ids[i]);
        if (sz == 0 || sz > (1u << 24)) continue;
        int is_exif = type && strcmp(type, "Exif") == 0;
        int is_xmp = type && strcmp(type, "mime") == 0 && ctype && strcmp(ctype, "application/rdf+xml") == 0;
        if ((is_exif && out->exif) || (is_xmp && out->xmp) || (!is_exif && !is_xmp)) continue;
        unsigned char *buf = (unsigned char *)malloc(sz);
        if (!buf) continue;
        if (heif_image_handle_get_metadata(h, ids[i], buf).code != heif_error_Ok) { free(buf); continue; }
        if (is_exif) {
            /* HEIF's Exif item: a 4-byte big-endian offset to the TIFF header, then the data. */
            if (sz < 4) { free(buf); continue; }
            uint32_t off = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
            if ((size_t)off > sz - 4) { free(buf); continue; }
            size_t k = sz - 4 - off;
            memmove(buf, buf + 4 + off, k);
            out->exif = buf; out->exif_size = k;
            strip_exif_prefix(out);
        } else {
            out->xmp = buf; out->xmp_size = sz;
        }
    }
    size_t icc = heif_image_handle_get_raw_color_profile_size(h);
    enum heif_color_profile_type pt = heif_image_handle_get_color_profile_type(h);
    if (icc > 0 && icc <= (1u << 24) && (pt == heif_color_profile_type_prof || pt == heif_color_profile_type_rICC)) {
        unsigned char *buf = (unsigned char *)malloc(icc);
        if (buf && heif_image_handle_get_raw_color_profile(h, buf).code == heif_error_Ok) { out->icc = buf; out->icc_size = icc; }
        else free(buf);
    }
    heif_close(ctx, h);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// BMP
// ---------------------------------------------------------------------------------------------
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

typedef struct {
    uint32_t offset, header;
    int32_t w, h;
    int top_down;
    uint16_t bpp;
    uint32_t compression;
    uint32_t masks[4];   /* R, G, B, A */
    uint32_t colors;
    size_t palette_at;
    int palette_entry;   /* 3 (core) or 4 bytes */
    int channels;
} bmp_layout;

static int bmp_layout_of(const unsigned char *d, size_t size, bmp_layout *L, char *err, size_t errlen) {
    memset(L, 0, sizeof(*L));
    if (size < 26 || d[0] != 'B' || d[1] != 'M') { errf(err, errlen, "not a BMP file"); return 1; }
    L->offset = le32(d + 10);
    L->header = le32(d + 14);
    if (L->header == 12) {
        if (size < 14 + 12) { errf(err, errlen, "truncated BMP header"); return 1; }
        L->w = le16(d + 18);
        L->h = le16(d + 20);
        L->bpp = le16(d + 24);
        L->palette_entry = 3;
    } else if (L->header == 40 || L->header == 52 || L->header == 56 || L->header == 64 || L->header == 108 || L->header == 124) {
        if (size < 14 + (size_t)L->header) { errf(err, errlen, "truncated BMP header"); return 1; }
        if (L->header == 64) { errf(err, errlen, "OS/2 2.x BMP"); return 3; }
        L->w = (int32_t)le32(d + 18);
        L->h = (int32_t)le32(d + 22);
        L->bpp = le16(d + 28);
        L->compression = le32(d + 30);
        L->colors = le32(d + 46);
        L->palette_entry = 4;
        if (L->header >= 52) for (int i = 0; i < 3; i++) L->masks[i] = le32(d + 54 + 4 * i);
        if (L->header >= 56) L->masks[3] = le32(d + 66);
    } else {
        errf(err, errlen, "BMP header of %u bytes", L->header);
        return L->header < 12 || L->header > 4096 ? 1 : 3;
    }
    if (L->h < 0) {
        if (L->h == INT32_MIN) { errf(err, errlen, "bad BMP height"); return 1; }
        L->h = -L->h;
        L->top_down = 1;
    }
    if (L->w <= 0 || L->h <= 0) { errf(err, errlen, "BMP image is empty or has a negative width (%dx%d)", L->w, L->h); return 1; }
    size_t after = 14 + (size_t)L->header;
    if (L->compression == 3 || L->compression == 6) {
        if (L->header == 40) {
            int k = L->compression == 6 ? 4 : 3;
            if (size < after + 4 * (size_t)k) { errf(err, errlen, "truncated BMP bit masks"); return 1; }
            for (int i = 0; i < k; i++) L->masks[i] = le32(d + after + 4 * i);
            after += 4 * (size_t)k;
        }
        if (L->bpp != 16 && L->bpp != 32) { errf(err, errlen, "%u-bit BMP with bit masks", L->bpp); return 3; }
    } else if (L->compression == 0) {
        if (L->bpp == 16) { L->masks[0] = 0x7C00; L->masks[1] = 0x03E0; L->masks[2] = 0x001F; L->masks[3] = 0; }
        if (L->bpp == 32 || L->bpp == 24) { L->masks[0] = 0xFF0000; L->masks[1] = 0xFF00; L->masks[2] = 0xFF; L->masks[3] = 0; }
    } else if (L->compression == 1 || L->compression == 2) {
        if ((L->compression == 1 && L->bpp != 8) || (L->compression == 2 && L->bpp != 4)) {
            errf(err, errlen, "RLE BMP with %u bits per pixel", L->bpp);
            return 1;
        }
        if (L->top_down) { errf(err, errlen, "top-down RLE BMP"); return 1; }
    } else {
        static const char *names[] = {"", "", "", "", "embedded JPEG", "embedded PNG"};
        errf(err, errlen, "BMP compression %u%s%s", L->compression, L->compression == 4 || L->compression == 5 ? ": " : "",
             L->compression == 4 || L->compression == 5 ? names[L->compression] : "");
        return 3;
    }
    if (L->bpp != 1 && L->bpp != 4 && L->bpp != 8 && L->bpp != 16 && L->bpp != 24 && L->bpp != 32) {
        errf(err, errlen, "%u-bit BMP", L->bpp);
        return L->bpp == 2 || L->bpp == 64 ? 3 : 1;
    }
    if (L->bpp <= 8) {
        uint32_t max = 1u << L->bpp;
        if (L->colors == 0 || L->colors > max) {
            /* Implicit (core headers have no count): what fits before the pixels, at most 2^bpp. */
            L->colors = max;
            if (L->offset > after && (L->offset - after) / L->palette_entry < max) L->colors = (uint32_t)((L->offset - after) / L->palette_entry);
            if (L->colors == 0) { errf(err, errlen, "BMP palette is missing"); return 1; }
        }
        L->palette_at = after;
        if (size < after + (size_t)L->colors * L->palette_entry) { errf(err, errlen, "truncated BMP palette"); return 1; }
    }
    L->channels = L->masks[3] != 0 && L->bpp >= 16 ? 4 : 3;
    return 0;
}

int fr_bmp_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    bmp_layout L;
    int rc = bmp_layout_of(data, size, &L, err, errlen);
    if (rc) return rc;
    out->width = L.w;
    out->height = L.h;
    out->channels = L.channels;
    out->depth = 8;
    return 0;
}

/* A field under `mask`, scaled to 8 bits. */
static unsigned char mask_value(uint32_t v, uint32_t mask) {
    if (!mask) return 0;
    int shift = 0;
    while (!((mask >> shift) & 1)) shift++;
    uint32_t m = mask >> shift, x = (v & mask) >> shift;
    return (unsigned char)(((uint64_t)x * 255 + m / 2) / m);
}

static int bmp_rle(const unsigned char *d, size_t size, const bmp_layout *L, const unsigned char *pal, unsigned char *dst) {
    /* Bottom-up: row 0 of the file is the last output row. Pixels not written stay black. */
    size_t p = L->offset;
    int64_t x = 0, y = 0;
    const int64_t W = L->w, H = L->h;
    int c = L->channels;
#define PUT(idx) do { if (x < W && y < H) { unsigned i_ = (idx) < L->colors ? (idx) : 0; \
        unsigned char *o_ = dst + ((size_t)(H - 1 - y) * (size_t)W + (size_t)x) * c; \
        o_[0] = pal[i_ * 3]; o_[1] = pal[i_ * 3 + 1]; o_[2] = pal[i_ * 3 + 2]; } x++; } while (0)
    while (p + 1 < size) {
        unsigned n = d[p], v = d[p + 1];
        p += 2;
        if (n > 0) {
            for (unsigned k = 0; k < n; k++) {
                unsigned idx = L->bpp == 8 ? v : (k & 1 ? v & 15 : v >> 4);
                PUT(idx);
            }
        } else if (v == 0) { x = 0; y++; }
        else if (v == 1) { return 0; }
        else if (v == 2) {
            if (p + 1 >= size) return 1;
            x += d[p]; y += d[p + 1];
            p += 2;
        } else {
            size_t bytes = L->bpp == 8 ? v : (v + 1) / 2;
            if (p + bytes > size) return 1;
            for (unsigned k = 0; k < v; k++) {
                unsigned idx = L->bpp == 8 ? d[p + k] : (k & 1 ? d[p + k / 2] & 15 : d[p + k / 2] >> 4);
                PUT(idx);
            }
            p += bytes + (bytes & 1);
        }
        if (y > H) return 0;
    }
#undef PUT
    return 1;   /* no end-of-bitmap marker: truncated */
}

int fr_bmp_decode(const unsigned char *d, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    init_image(out);
    bmp_layout L;
    int rc = bmp_layout_of(d, size, &L, err, errlen);
    if (rc) return rc;
    size_t bytes = checked_bytes((size_t)L.w, (size_t)L.h, (size_t)L.channels, 1, max_pixels);
    if (bytes == 0) { errf(err, errlen, "image exceeds the pixel limit"); return 2; }
    if (L.offset >= size) { errf(err, errlen, "BMP pixel data offset %u is beyond the file's %zu bytes", L.offset, size); return 1; }
    unsigned char pal[256 * 3];
    memset(pal, 0, sizeof(pal));
    for (uint32_t i = 0; i < L.colors && L.bpp <= 8; i++) {
        const unsigned char *e = d + L.palette_at + (size_t)i * L.palette_entry;   /* checked in layout */
        pal[i * 3] = e[2]; pal[i * 3 + 1] = e[1]; pal[i * 3 + 2] = e[0];
    }
    int is_rle = L.compression == 1 || L.compression == 2;
    /* Row stride: rows padded to 4 bytes. w ≤ max_pixels, so w × 32 cannot overflow. */
    size_t stride = (((size_t)L.w * L.bpp + 31) / 32) * 4;
    if (!is_rle) {
        if ((size_t)L.h > (size - L.offset) / stride) {
            errf(err, errlen, "truncated BMP: %d rows of %zu bytes need %zu bytes after offset %u, the file has %zu",
                 L.h, stride, (size_t)L.h * stride, L.offset, size - L.offset);
            return 1;
        }
    }
    unsigned char *dst = (unsigned char *)calloc(1, bytes);
    if (!dst) { errf(err, errlen, "out of memory"); return 1; }
    if (is_rle) {
        if (bmp_rle(d, size, &L, pal, dst)) { free(dst); errf(err, errlen, "truncated or corrupt RLE BMP data"); return 1; }
    } else {
        int c = L.channels;
        for (int32_t y = 0; y < L.h; y++) {
            const unsigned char *row = d + L.offset + (size_t)(L.top_down ? y : L.h - 1 - y) * stride;
            unsigned char *o = dst + (size_t)y * L.w * c;
            for (int32_t x = 0; x < L.w; x++, o += c) {
                if (L.bpp <= 8) {
                    unsigned idx = packed_sample(row, (size_t)x, L.bpp);
                    if (idx >= L.colors) idx = 0;
                    o[0] = pal[idx * 3]; o[1] = pal[idx * 3 + 1]; o[2] = pal[idx * 3 + 2];
                } else if (L.bpp == 24 && L.compression == 0) {
                    const unsigned char *s = row + (size_t)x * 3;
                    o[0] = s[2]; o[1] = s[1]; o[2] = s[0];
                } else {
                    uint32_t v = L.bpp == 16 ? le16(row + (size_t)x * 2) : le32(row + (size_t)x * 4);
                    o[0] = mask_value(v, L.masks[0]);
                    o[1] = mask_value(v, L.masks[1]);
                    o[2] = mask_value(v, L.masks[2]);
                    if (c == 4) o[3] = mask_value(v, L.masks[3]);
                }
            }
        }
    }
    out->width = L.w;
    out->height = L.h;
    out->channels = L.channels;
    out->depth = 8;
    out->pixels = dst;
    return 0;
}

static void put32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }
static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }

int fr_bmp_encode(const unsigned char *pixels, int width, int height, int channels, int dpi,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    *out = NULL; *out_size = 0;
    if (width <= 0 || height <= 0 || (channels != 3 && channels != 4)) { errf(err, errlen, "invalid image parameters for BMP"); return 1; }
    uint32_t header = channels == 4 ? 108 : 40;
    size_t stride = (((size_t)width * channels * 8 + 31) / 32) * 4;
    size_t offset = 14 + header;
    if ((size_t)height > (UINT32_MAX - offset) / stride) { errf(err, errlen, "image too large for BMP"); return 1; }
    size_t total = offset + stride * (size_t)height;
    unsigned char *buf = (unsigned char *)calloc(1, total);
    if (!buf) { errf(err, errlen, "out of memory"); return 1; }
    buf[0] = 'B'; buf[1] = 'M';
    put32(buf + 2, (uint32_t)total);
    put32(buf + 10, (uint32_t)offset);
    put32(buf + 14, header);
    put32(buf + 18, (uint32_t)width);
    put32(buf + 22, (uint32_t)height);   /* bottom-up */
    put16(buf + 26, 1);
    put16(buf + 28, (uint16_t)(channels * 8));
    put32(buf + 30, channels == 4 ? 3 : 0);
    put32(buf + 34, (uint32_t)(stride * (size_t)height));
    uint32_t ppm = dpi > 0 ? (uint32_t)(dpi / 0.0254 + 0.5) : 2835;
    put32(buf + 38, ppm);
    put32(buf + 42, ppm);
    if (channels == 4) {
        put32(buf + 54, 0x00FF0000); put32(buf + 58, 0x0000FF00); put32(buf + 62, 0x000000FF); put32(buf + 66, 0xFF000000);
        memcpy(buf + 70, "BGRs", 4);   /* LCS_sRGB, stored little-endian as 'sRGB' */
    }
    for (int y = 0; y < height; y++) {
        const unsigned char *s = pixels + (size_t)y * width * channels;
        unsigned char *o = buf + offset + (size_t)(height - 1 - y) * stride;
        for (int x = 0; x < width; x++, s += channels, o += channels) {
            o[0] = s[2]; o[1] = s[1]; o[2] = s[0];
            if (channels == 4) o[3] = s[3];
        }
    }
    *out = buf;
    *out_size = total;
    return 0;
}
