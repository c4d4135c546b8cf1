// See include/image_codecs.h. libpng 1.6 classic API, TurboJPEG 2.x (tj* API), libexif 0.6.
#include "image_codecs.h"

#include <libexif/exif-data.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

void fr_free(void *p) { free(p); }

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------
typedef struct {
    const unsigned char *data;
    size_t size, pos;
    char *err;
    size_t errlen;
} png_reader;

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    png_reader *r = (png_reader *)png_get_io_ptr(png);
    if (n > r->size - r->pos) png_error(png, "truncated PNG data");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_reader *r = (png_reader *)png_get_error_ptr(png);
    if (r) set_err(r->err, r->errlen, msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int exif_orientation(const unsigned char *data, size_t size);

/* The orientation in a PNG's eXIf chunk (a TIFF structure, as after JPEG's "Exif\0\0"), or 0. */
static int png_exif_orientation(png_structp png, png_infop info) {
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 len = 0;
    png_bytep exif = NULL;
    if (!png_get_eXIf_1(png, info, &len, &exif) || !exif || len < 8 || len > (1u << 24)) return 0;
    unsigned char *buf = (unsigned char *)malloc((size_t)len + 6);
    if (!buf) return 0;
    memcpy(buf, "Exif\0\0", 6);
    memcpy(buf + 6, exif, len);
    int v = exif_orientation(buf, (size_t)len + 6);
    free(buf);
    return v;
#else
    (void)png; (void)info;
    return 0;
#endif
}

/* What png_decode_impl produces: the header only, the pixels as stored (cv2.IMREAD_UNCHANGED-like,
   palette and low-bit gray expanded), or one 8-bit gray channel as cv2.IMREAD_GRAYSCALE reads it. */
enum png_mode { PNG_HEADER, PNG_PIXELS, PNG_GRAY };

static int png_decode_impl(const unsigned char *data, size_t size, size_t max_pixels, enum png_mode mode, fr_image *out,
                           char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) { set_err(err, errlen, "not a PNG file"); return 1; }
    png_reader reader = {data, size, 8, err, errlen};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_on_error, png_on_warning);
    if (!png) { set_err(err, errlen, "out of memory"); return 1; }
    png_infop info = png_create_info_struct(png);
    if (!info) { png_destroy_read_struct(&png, NULL, NULL); set_err(err, errlen, "out of memory"); return 1; }
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    png_set_read_fn(png, &reader, png_read_mem);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    /* The size comes from the header alone: png_read_update_info below allocates row buffers
       (a 69-byte file claiming 2147483647x1 pixels made it allocate 6 GB), so the header-only
       answer and the pixel limit are settled before it. */
    int trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (mode == PNG_HEADER) {
        int channels = color == PNG_COLOR_TYPE_GRAY ? 1 + trns : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                     : color == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 3 + trns;   /* RGB and palette */
        out->width = (int)w;
        out->height = (int)h;
        out->channels = channels;
        out->depth = depth == 16 ? 16 : 8;
        png_destroy_read_struct(&png, &info, NULL);
        return 0;
    }
    if ((size_t)w * (size_t)h > max_pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        set_err(err, errlen, "image exceeds the pixel limit");
        return 2;
    }
    int exif_before = png_exif_orientation(png, info);   /* eXIf before the image data */
    if (exif_before) out->orientation = exif_before;
    if (mode == PNG_GRAY) {
        /* The transforms OpenCV asks libpng for (strip_16, strip_alpha, palette to RGB, low-bit
           gray to 8 bits, then png_set_rgb_to_gray(1, 0.299, 0.587) for colour types:
           (9797 R + 19234 G + 3737 B) >> 15, truncated; gamma-aware with gAMA/sRGB). */
        if (depth == 16) png_set_strip_16(png);
        png_set_strip_alpha(png);
        if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if ((color & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if ((color & PNG_COLOR_MASK_COLOR) != 0) png_set_rgb_to_gray(png, 1, 0.299, 0.587);
    } else {
        if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (trns) png_set_tRNS_to_alpha(png);
        if (depth == 16) png_set_swap(png);   // PNG is big-endian; give native (little-endian) uint16
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (mode == PNG_GRAY && (png_get_channels(png, info) != 1 || png_get_bit_depth(png, info) != 8)) {
        png_error(png, "unexpected PNG layout after gray conversion");
    }
    out->width = (int)w;
    out->height = (int)h;
    out->channels = png_get_channels(png, info);
    out->depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    pixels = (unsigned char *)malloc(rowbytes * h);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, info);
    if (!exif_before) {   /* or after it */
        int exif_after = png_exif_orientation(png, info);
        if (exif_after) out->orientation = exif_after;
    }
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->pixels = pixels;
    return 0;
}

int fr_png_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen) {
    return png_decode_impl(data, size, 0, PNG_HEADER, out, err, errlen);
}

int fr_png_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    return png_decode_impl(data, size, max_pixels, PNG_PIXELS, out, err, errlen);
}

typedef struct {
    unsigned char *data;
    size_t size, capacity;
    int failed;
} png_writer;

static void png_write_mem(png_structp png, png_bytep in, png_size_t n) {
    png_writer *w = (png_writer *)png_get_io_ptr(png);
    if (w->size + n > w->capacity) {
        size_t cap = w->capacity ? w->capacity : 65536;
        while (cap < w->size + n) cap *= 2;
        unsigned char *p = (unsigned char *)realloc(w->data, cap);
        if (!p) { w->failed = 1; png_error(png, "out of memory"); }
        w->data = p;
        w->capacity = cap;
    }
    memcpy(w->data + w->size, in, n);
    w->size += n;
}

static void png_flush_mem(png_structp png) { (void)png; }

int fr_png_encode(const unsigned char *pixels, int width, int height, int channels, int depth, int level,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    static const int types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 || (depth != 8 && depth != 16)) {
        set_err(err, errlen, "invalid image parameters for PNG");
        return 1;
    }
    png_reader errsink = {NULL, 0, 0, err, errlen};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errsink, png_on_error, png_on_warning);
    if (!png) { set_err(err, errlen, "out of memory"); return 1; }
    png_infop info = png_create_info_struct(png);
    png_writer writer = {NULL, 0, 0, 0};
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(rows);
        free(writer.data);
        png_destroy_write_struct(&png, &info);
        if (!info) set_err(err, errlen, "out of memory");
        return 1;
    }
    png_set_write_fn(png, &writer, png_write_mem, png_flush_mem);
    if (level >= 0) {
        png_set_compression_level(png, level);
    } else {
        // cv2.imwrite's default (OpenCV 4.x grfmt_png.cpp with no IMWRITE_PNG_COMPRESSION): the
        // Sub filter only, zlib level 1 and the Z_RLE strategy. Fast, and the bytes upstream writes.
        png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
        png_set_compression_level(png, 1);
        png_set_compression_strategy(png, 3 /* Z_RLE */);
    }
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, depth, types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png);
    size_t rowbytes = (size_t)width * channels * (depth / 8);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *out = writer.data;
    *out_size = writer.size;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------------------------
static int exif_orientation(const unsigned char *data, size_t size) {
    int orientation = 1;
    ExifData *ed = exif_data_new_from_data(data, (unsigned int)(size > 0xffffffffu ? 0xffffffffu : size));
    if (!ed) return 1;
    ExifEntry *entry = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (entry && entry->format == EXIF_FORMAT_SHORT && entry->components >= 1 && entry->size >= 2) {
        int v = exif_get_short(entry->data, exif_data_get_byte_order(ed));
        if (v >= 1 && v <= 8) orientation = v;
    }
    exif_data_unref(ed);
    return orientation;
}

static int jpeg_header(tjhandle tj, const unsigned char *data, size_t size, fr_image *out, int *colorspace,
                       char *err, size_t errlen) {
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) { set_err(err, errlen, "not a JPEG file"); return 1; }
    if (size > 0xffffffffu) { set_err(err, errlen, "JPEG file too large"); return 1; }
    if (tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &subsamp, &cs) != 0) {
        set_err(err, errlen, tjGetErrorStr2(tj));
        return 1;
    }
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) { set_err(err, errlen, "CMYK JPEG images are not supported"); return 1; }
    out->width = w;
    out->height = h;
    out->channels = cs == TJCS_GRAY ? 1 : 3;
    out->depth = 8;
    *colorspace = cs;
    return 0;
}

int fr_jpeg_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    tjhandle tj = tjInitDecompress();
    if (!tj) { set_err(err, errlen, "cannot start the JPEG decoder"); return 1; }
    int cs;
    int rc = jpeg_header(tj, data, size, out, &cs, err, errlen);
    tjDestroy(tj);
    if (rc == 0) out->orientation = exif_orientation(data, size);
    return rc;
}

int fr_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    tjhandle tj = tjInitDecompress();
    if (!tj) { set_err(err, errlen, "cannot start the JPEG decoder"); return 1; }
    int cs;
    if (jpeg_header(tj, data, size, out, &cs, err, errlen) != 0) { tjDestroy(tj); return 1; }
    if ((size_t)out->width * (size_t)out->height > max_pixels) {
        tjDestroy(tj);
        set_err(err, errlen, "image exceeds the pixel limit");
        return 2;
    }
    size_t bytes = (size_t)out->width * out->height * out->channels;
    unsigned char *pixels = (unsigned char *)malloc(bytes);
    if (!pixels) { tjDestroy(tj); set_err(err, errlen, "out of memory"); return 1; }
    int pf = out->channels == 1 ? TJPF_GRAY : TJPF_RGB;
    // Flags 0: accurate integer IDCT and fancy upsampling, libjpeg's defaults (as OpenCV decodes).
    if (tjDecompress2(tj, data, (unsigned long)size, pixels, out->width, 0, out->height, pf, 0) != 0) {
        // A truncated file decodes with a warning (gray fill); treat every warning as an error.
        set_err(err, errlen, tjGetErrorStr2(tj));
        free(pixels);
        tjDestroy(tj);
        return 1;
    }
    tjDestroy(tj);
    out->pixels = pixels;
    out->orientation = exif_orientation(data, size);
    return 0;
}

int fr_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality, int subsampling,
                   unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || quality < 1 || quality > 100) {
        set_err(err, errlen, "invalid image parameters for JPEG");
        return 1;
    }
    tjhandle tj = tjInitCompress();
    if (!tj) { set_err(err, errlen, "cannot start the JPEG encoder"); return 1; }
    unsigned char *buf = NULL;
    unsigned long len = 0;
    int samp = channels == 1 ? TJSAMP_GRAY : (subsampling == 444 ? TJSAMP_444 : TJSAMP_420);
    /* The accurate integer DCT, as libjpeg defaults to and cv2.imwrite uses (TurboJPEG defaults to
       the fast one): the same bytes as OpenCV for the same pixels and quality. */
    int rc = tjCompress2(tj, pixels, width, 0, height, channels == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &len, samp, quality, TJFLAG_ACCURATEDCT);
    if (rc != 0) {
        set_err(err, errlen, tjGetErrorStr2(tj));
        tjFree(buf);
        tjDestroy(tj);
        return 1;
    }
    tjDestroy(tj);
    // Hand back a malloc'd copy so every buffer is released with fr_free.
    unsigned char *copy = (unsigned char *)malloc(len);
    if (!copy) { tjFree(buf); set_err(err, errlen, "out of memory"); return 1; }
    memcpy(copy, buf, len);
    tjFree(buf);
    *out = copy;
    *out_size = len;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Grayscale reads: cv2.imread(path, IMREAD_GRAYSCALE), OpenCV 4.6 `grfmt_png.cpp` and
// `grfmt_jpeg.cpp` `readData` with a one-channel destination.
// ---------------------------------------------------------------------------------------------

/* PNG: libpng converts, with the transforms OpenCV asks for (png_decode_impl's PNG_GRAY). */
int fr_png_decode_gray(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    return png_decode_impl(data, size, max_pixels, PNG_GRAY, out, err, errlen);
}

/* JPEG: out_color_space JCS_GRAYSCALE, which for a YCbCr file is its luma plane as decoded (no
   colour conversion; the chroma components are not decoded). */
int fr_jpeg_decode_gray(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    tjhandle tj = tjInitDecompress();
    if (!tj) { set_err(err, errlen, "cannot start the JPEG decoder"); return 1; }
    int cs;
    if (jpeg_header(tj, data, size, out, &cs, err, errlen) != 0) { tjDestroy(tj); return 1; }
    if ((size_t)out->width * (size_t)out->height > max_pixels) {
        tjDestroy(tj);
        set_err(err, errlen, "image exceeds the pixel limit");
        return 2;
    }
    out->channels = 1;
    unsigned char *pixels = (unsigned char *)malloc((size_t)out->width * out->height);
    if (!pixels) { tjDestroy(tj); set_err(err, errlen, "out of memory"); return 1; }
    if (tjDecompress2(tj, data, (unsigned long)size, pixels, out->width, 0, out->height, TJPF_GRAY, 0) != 0) {
        set_err(err, errlen, tjGetErrorStr2(tj));
        free(pixels);
        tjDestroy(tj);
        return 1;
    }
    tjDestroy(tj);
    out->pixels = pixels;
    out->orientation = exif_orientation(data, size);
    return 0;
}
