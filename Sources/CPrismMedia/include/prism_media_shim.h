// C functions with plain arguments in front of the variadic and macro-only parts of libvips and
// FFmpeg, so PrismMedia's Swift code can call them; each does one library call and nothing more.
#ifndef PRISM_MEDIA_SHIM_H
#define PRISM_MEDIA_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <vips/vips.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

// ---- libvips ----

/// VIPS_INIT, then blocks every loader libvips marks untrusted except pdfload (PrismMedia only
/// reaches it through PDFDocument), and turns off the operation cache. Returns 0 on success.
/// Call once (PrismMedia guards it); safe from any thread.
int prism_vips_startup(const char *argv0);

/// Opens only the header of an image in memory (pixels are decoded later, on demand).
/// `buf` must outlive the returned image. NULL on error (message in vips_error_buffer()).
VipsImage *prism_vips_header_from_buffer(const void *buf, size_t len, const char *options);

/// vips_thumbnail_buffer into a width x height box, never upsizing; shrink-on-load happens inside.
/// `options` are loader options ("fail_on=truncated", "page=2", "n=-1"). `no_rotate` skips EXIF autorotate.
int prism_vips_thumbnail_buffer(const void *buf, size_t len, VipsImage **out,
                                int width, int height, const char *options, int no_rotate);
/// vips_thumbnail_image into a width x height box, never upsizing (for images already in memory).
int prism_vips_thumbnail_image(VipsImage *in, VipsImage **out, int width, int height);
/// Integer box shrink (averaging `factor` x `factor` blocks): cheap, streams, no premultiplication.
int prism_vips_shrink(VipsImage *in, VipsImage **out, double factor);
/// The smallest value in band `band` (e.g. to learn whether an alpha channel is fully opaque).
int prism_vips_band_min(VipsImage *in, int band, double *out);
/// Flattens an alpha channel onto white.
int prism_vips_flatten_white(VipsImage *in, VipsImage **out);
/// Converts to 8-bit sRGB (or 8-bit greyscale when `keep_grey` and the input is one band).
int prism_vips_to_srgb8(VipsImage *in, VipsImage **out, int keep_grey);
/// Keeps the first `bands` bands.
int prism_vips_extract_bands(VipsImage *in, VipsImage **out, int first, int n);
/// vips_pdfload_buffer of one page at a DPI. `buf` must outlive `out`.
int prism_vips_pdfload_page(const void *buf, size_t len, VipsImage **out, int page, double dpi);
/// A 3-band (RGB) or 4-band (RGBA) 8-bit image copied from packed rows.
VipsImage *prism_vips_image_from_rgb(const void *data, size_t len, int width, int height, int bands);

/// Savers into a g_malloc'd buffer (free with g_free). `strip` drops EXIF/XMP/IPTC/ICC.
int prism_vips_jpegsave(VipsImage *in, void **buf, size_t *len, int quality, int strip);
int prism_vips_pngsave(VipsImage *in, void **buf, size_t *len, int compression, int palette, int strip);
int prism_vips_webpsave(VipsImage *in, void **buf, size_t *len, int quality, int lossless, int strip);
int prism_vips_gifsave(VipsImage *in, void **buf, size_t *len, int strip);
int prism_vips_heifsave(VipsImage *in, void **buf, size_t *len, int quality, int avif, int strip);

/// Arms a time budget on `image`: once g_get_monotonic_time() passes `deadline_us`, evaluation of
/// the image is killed and the pending operation fails. Idempotent.
void prism_vips_set_deadline(VipsImage *image, int64_t deadline_us);
/// Whether the deadline armed on `image` (if any) has passed.
int prism_vips_deadline_passed(VipsImage *image);

// ---- FFmpeg ----

/// Opaque input: a demuxer reading from a private copy of bytes in memory, or from a pull callback.
typedef struct PrismAVInput PrismAVInput;
/// Reads up to `size` bytes into `buf`; returns the count, 0 or AVERROR_EOF at the end, <0 on error.
typedef int (*PrismAVReadFn)(void *opaque, uint8_t *buf, int size);

/// Opens a container held in memory (copied; the caller may free `data` afterwards).
/// `probesize` bounds how many bytes probing may read; `options` are demuxer options "k=v:k=v"
/// (e.g. "sample_rate=16000:ch_layout=mono" for raw PCM). Returns NULL and fills `err` on failure.
PrismAVInput *prism_av_open_memory(const uint8_t *data, size_t len, int64_t probesize,
                                   const char *format_name, const char *options, char *err, size_t errlen);
/// Opens a container read sequentially (no seeking) through `read`, for streaming input.
PrismAVInput *prism_av_open_stream(PrismAVReadFn read, void *opaque, int64_t probesize,
                                   const char *format_name, const char *options, char *err, size_t errlen);
AVFormatContext *prism_av_format(PrismAVInput *input);
void prism_av_close(PrismAVInput *input);

int prism_averror_eof(void);
int prism_averror_eagain(void);
int64_t prism_av_nopts_value(void);
int prism_av_time_base(void);

/// A resampler from the decoder's layout/format/rate to `out_channels` (default layout) at
/// `out_rate` in `out_fmt`. `soxr` asks for the SoX engine; `used_soxr` says whether it was available.
SwrContext *prism_swr_create(AVChannelLayout *in_layout, int in_fmt, int in_rate,
                             int out_channels, int out_fmt, int out_rate, int soxr, int *used_soxr);

/// Scales/converts a decoded video frame into one packed plane (`dst_fmt`: AV_PIX_FMT_RGB24 or
/// AV_PIX_FMT_GRAY8) of `dst_w` x `dst_h`, reusing `*ctx` across calls (free with sws_freeContext).
int prism_sws_frame_to(struct SwsContext **ctx, const AVFrame *frame, int dst_w, int dst_h, int dst_fmt,
                       uint8_t *dst, int dst_stride);

/// An encoder+muxer writing into memory. `format_name` as in ffmpeg -f ("wav", "flac", "mp3", "ogg").
typedef struct PrismAVOutput PrismAVOutput;
PrismAVOutput *prism_av_output_open(const char *format_name, const char *codec_name, int sample_rate,
                                    int channels, int64_t bit_rate, char *err, size_t errlen);
AVCodecContext *prism_av_output_codec(PrismAVOutput *output);
/// Sends one frame (NULL flushes) through the encoder into the muxer.
int prism_av_output_write(PrismAVOutput *output, AVFrame *frame);
/// Writes the trailer and hands the bytes to the caller (free with av_free). Frees `output`.
int prism_av_output_finish(PrismAVOutput *output, uint8_t **buf, int *len);
void prism_av_output_free(PrismAVOutput *output);

#endif
