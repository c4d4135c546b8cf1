// Small C layer over libpng (classic API: it needs setjmp, which Swift cannot call), TurboJPEG 2.x
// and libexif. Everything decodes from and encodes to memory, so the Swift side owns file I/O
// (and writes atomically). Every failure returns nonzero with a one-line message in `err`.
#ifndef FACERESTORE_IMAGE_CODECS_H
#define FACERESTORE_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width;
    int height;
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (RGB order).
    int channels;
    /// 8 or 16 bits per sample; 16-bit samples are native-endian uint16.
    int depth;
    /// EXIF orientation tag (1–8); 1 when absent.
    int orientation;
    /// malloc'd, row-major interleaved; free with fr_free.
    unsigned char *pixels;
    /// Pages (TIFF directories) in the file; 1 for the other formats.
    int pages;
    /// 1 when the encoding is lossless (WebP VP8L, PNG, TIFF, BMP), 0 when lossy.
    int lossless;
    int block_rows;   /* streaming reads: the rows of one strip or tile row */
} fr_image;

/// Metadata blocks as stored, each malloc'd (NULL when absent); free with fr_metadata_free.
typedef struct {
    /// TIFF-structured EXIF (no "Exif\0\0" prefix).
    unsigned char *exif; size_t exif_size;
    unsigned char *icc; size_t icc_size;
    unsigned char *xmp; size_t xmp_size;
    /// IPTC-IIM records.
    unsigned char *iptc; size_t iptc_size;
    /// Resolution in dots per inch; 0 when absent.
    double dpi_x, dpi_y;
    /// TIFF only: the first page's text tags (tag numbers in `text_tags`, NUL-terminated values).
    int text_count;
    int text_tags[8];
    char *text[8];
} fr_metadata;

void fr_metadata_free(fr_metadata *m);

/// Reads only the header: size, channels, depth. Returns 0 on success.
int fr_png_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);
int fr_jpeg_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);

/// Decodes a whole image, refusing more than `max_pixels` pixels before allocating.
/// PNG: palette and low-bit gray expanded to 8 bits, tRNS to an alpha channel, 16-bit kept.
/// JPEG: decoded to RGB (3 channels) or gray (1), orientation read from EXIF.
int fr_png_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);

/// Encodes interleaved samples (RGB order; 1–4 channels; depth 8 or 16) to a malloc'd buffer.
int fr_png_encode(const unsigned char *pixels, int width, int height, int channels, int depth, int level,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen);
/// Encodes 8-bit gray (1) or RGB (3) at `quality` with 4:2:0 (`subsampling` 420) or 4:4:4 (444) chroma.
int fr_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality, int subsampling,
                   unsigned char **out, size_t *out_size, char *err, size_t errlen);

/// One 8-bit gray channel as `cv2.imread(path, IMREAD_GRAYSCALE)` (OpenCV 4.6) gives it: PNG through
/// libpng's rgb_to_gray (0.299, 0.587), JPEG as its decoded luma plane; orientation read from EXIF.
int fr_png_decode_gray(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_jpeg_decode_gray(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);

void fr_free(void *p);

// ---------------------------------------------------------------------------------------------
// Archive formats (archive_codecs.c): TIFF (libtiff), WebP (libwebp), HEIF (libheif), BMP (ours).
// The `_info` functions read the header only; `_decode` refuses more than `max_pixels` pixels
// before allocating. Unsupported variants return 3 (and a message naming what); other failures 1.
// ---------------------------------------------------------------------------------------------

/// TIFF: the first page. Gray, gray+alpha, RGB, RGBA at 8 or 16 bits (1-bit gray and palettes
/// expanded to 8 bits; YCbCr through libtiff's RGBA reader or its JPEG colour conversion).
int fr_tiff_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);
int fr_tiff_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_tiff_metadata(const unsigned char *data, size_t size, fr_metadata *out, char *err, size_t errlen);
/// Interleaved samples (RGB order; 1–4 channels; depth 8 or 16, native-endian) as one page,
/// `compression` 5 (LZW) or 8 (Deflate) with the horizontal predictor. `meta` (may be NULL):
/// ICC, XMP, IPTC, resolution and the text tags are written; `exif` is ignored.
int fr_tiff_encode(const unsigned char *pixels, int width, int height, int channels, int depth, int compression,
                   const fr_metadata *meta, unsigned char **out, size_t *out_size, char *err, size_t errlen);

/// Streaming (bounded memory for large scans): the first page read band by band from a file
/// (strips or tiles; `rc` 4 when the file cannot be streamed: YCbCr without JPEG, or blocks over
/// `max_block_bytes`), rows out in the layout `fr_tiff_decode` gives; and a page written row by
/// row into a new file (`O_EXCL`), with the tags `fr_tiff_encode` writes, fsynced by `finish`.
typedef struct fr_tiff_stream fr_tiff_stream;
fr_tiff_stream *fr_tiff_stream_open(const char *path, size_t max_pixels, size_t max_block_bytes, fr_image *info, int *rc,
                                    char *err, size_t errlen);
int fr_tiff_stream_read(fr_tiff_stream *s, uint32_t y0, uint32_t rows, unsigned char *dst, size_t dst_bytes, char *err, size_t errlen);
void fr_tiff_stream_close(fr_tiff_stream *s);
typedef struct fr_tiff_writer fr_tiff_writer;
fr_tiff_writer *fr_tiff_writer_open(const char *path, int width, int height, int channels, int depth, int compression,
                                    const fr_metadata *meta, char *err, size_t errlen);
int fr_tiff_writer_rows(fr_tiff_writer *w, const unsigned char *rows, int count, char *err, size_t errlen);
int fr_tiff_writer_finish(fr_tiff_writer *w, char *err, size_t errlen);
void fr_tiff_writer_abort(fr_tiff_writer *w);

/// WebP: still images (lossy, lossless, alpha) to RGB or RGBA; animations refused.
int fr_webp_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);
int fr_webp_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_webp_metadata(const unsigned char *data, size_t size, fr_metadata *out, char *err, size_t errlen);
/// 8-bit RGB (3) or RGBA (4); `quality` < 0 for lossless. `meta` (may be NULL): ICC, EXIF, XMP chunks.
int fr_webp_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                   const fr_metadata *meta, unsigned char **out, size_t *out_size, char *err, size_t errlen);

/// HEIF/HEIC: the primary image, upright (irot/imir applied), to RGB/RGBA at 8 bits, or 16 bits
/// (samples scaled to the full range) when the file has more than 8.
int fr_heif_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);
int fr_heif_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_heif_metadata(const unsigned char *data, size_t size, fr_metadata *out, char *err, size_t errlen);

/// BMP: core (OS/2), INFO, V2–V5 headers; 1/4/8-bit palettes (RLE4/RLE8 included), 16, 24, 32
/// bits (BI_RGB and bitfields; alpha when a mask gives one) to RGB or RGBA 8-bit.
int fr_bmp_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);
int fr_bmp_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
/// 8-bit RGB (24-bit BI_RGB) or RGBA (32-bit BITMAPV4 with an alpha mask), bottom-up.
int fr_bmp_encode(const unsigned char *pixels, int width, int height, int channels, int dpi,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen);

/// zlib: inflates at most `max_out` bytes (more is an error); deflates at level 9; CRC-32.
int fr_inflate(const unsigned char *data, size_t size, size_t max_out, unsigned char **out, size_t *out_size);
int fr_deflate(const unsigned char *data, size_t size, unsigned char **out, size_t *out_size);
uint32_t fr_zlib_crc32(uint32_t crc, const unsigned char *data, size_t size);

#endif
