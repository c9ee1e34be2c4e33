// FFmpeg half of the PrismMedia C shim: in-memory and pull-callback demuxer inputs, an in-memory
// encoder+muxer, and the macro constants Swift cannot import. Decoding logic lives in Swift.
#include "prism_media_shim.h"
#include <string.h>
#include <errno.h>
#include <libavutil/opt.h>

// Demuxers a gateway has a reason to open. Playlist and concat demuxers (hls, concat, dash, ...)
// are left out: they open other URLs or files named inside the input.
static const char *allowed_demuxers =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,wav,w64,mp3,flac,ogg,aac,avi,mpegts,mpeg,flv,asf,aiff,"
    "caf,amr,au,s16le,f32le,image2,png_pipe,jpeg_pipe,bmp_pipe,gif,webp_pipe";

struct PrismAVInput {
    AVFormatContext *fmt;
    AVIOContext *avio;
    uint8_t *data;
    size_t len;
    size_t pos;
    PrismAVReadFn read;
    void *opaque;
};

static void put_error(int code, const char *what, char *err, size_t errlen) {
    if (!err || errlen == 0) return;
    char buf[128] = {0};
    if (code) av_strerror(code, buf, sizeof buf);
    snprintf(err, errlen, "%s%s%s", what, code ? ": " : "", buf);
}

static int memory_read(void *opaque, uint8_t *buf, int size) {
    PrismAVInput *in = opaque;
    size_t left = in->len - in->pos;
    if (left == 0) return AVERROR_EOF;
    size_t n = (size_t)size < left ? (size_t)size : left;
    memcpy(buf, in->data + in->pos, n);
    in->pos += n;
    return (int)n;
}

static int64_t memory_seek(void *opaque, int64_t offset, int whence) {
    PrismAVInput *in = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)in->len;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)in->pos; break;
    case SEEK_END: base = (int64_t)in->len; break;
    default: return AVERROR(EINVAL);
    }
    int64_t target = base + offset;
    if (target < 0 || target > (int64_t)in->len) return AVERROR(EINVAL);
    in->pos = (size_t)target;
    return target;
}

static int callback_read(void *opaque, uint8_t *buf, int size) {
    PrismAVInput *in = opaque;
    int n = in->read(in->opaque, buf, size);
    return n == 0 ? AVERROR_EOF : n;
}

// Input never opens anything but the bytes it was given.
static int refuse_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags, AVDictionary **options) {
    (void)s; (void)pb; (void)url; (void)flags; (void)options;
    return AVERROR(EPERM);
}

static PrismAVInput *open_input(PrismAVInput *in, int seekable, int64_t probesize,
                                const char *format_name, const char *options, char *err, size_t errlen) {
    const int avio_size = 64 * 1024;
    uint8_t *avio_buffer = av_malloc(avio_size);
    if (!avio_buffer) { put_error(AVERROR(ENOMEM), "allocating I/O buffer", err, errlen); prism_av_close(in); return NULL; }
    in->avio = avio_alloc_context(avio_buffer, avio_size, 0, in,
                                  seekable ? memory_read : callback_read, NULL, seekable ? memory_seek : NULL);
    if (!in->avio) { av_free(avio_buffer); put_error(AVERROR(ENOMEM), "allocating I/O", err, errlen); prism_av_close(in); return NULL; }
    if (!seekable) in->avio->seekable = 0;
    AVFormatContext *fmt = avformat_alloc_context();
    if (!fmt) { put_error(AVERROR(ENOMEM), "allocating demuxer", err, errlen); prism_av_close(in); return NULL; }
    fmt->pb = in->avio;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->io_open = refuse_io_open;
    if (probesize > 0) fmt->probesize = probesize;
    AVDictionary *dict = NULL;
    av_dict_set(&dict, "format_whitelist", allowed_demuxers, 0);
    if (options && *options) av_dict_parse_string(&dict, options, "=", ":", 0);
    const AVInputFormat *ifmt = NULL;
    if (format_name && *format_name) {
        ifmt = av_find_input_format(format_name);
        if (!ifmt) { put_error(0, "unknown input format", err, errlen); av_dict_free(&dict); avformat_free_context(fmt); prism_av_close(in); return NULL; }
    }
    int rc = avformat_open_input(&fmt, NULL, ifmt, &dict);
    av_dict_free(&dict);
    if (rc < 0) {
        // avformat_open_input frees the context on failure, but not our custom I/O.
        put_error(rc, "opening input", err, errlen);
        prism_av_close(in);
        return NULL;
    }
    in->fmt = fmt;
    return in;
}

PrismAVInput *prism_av_open_memory(const uint8_t *data, size_t len, int64_t probesize,
                                   const char *format_name, const char *options, char *err, size_t errlen) {
    PrismAVInput *in = av_mallocz(sizeof *in);
    if (!in) return NULL;
    in->data = av_malloc(len ? len : 1);
    if (!in->data) { av_free(in); put_error(AVERROR(ENOMEM), "copying input", err, errlen); return NULL; }
    memcpy(in->data, data, len);
    in->len = len;
    return open_input(in, 1, probesize, format_name, options, err, errlen);
}

PrismAVInput *prism_av_open_stream(PrismAVReadFn read, void *opaque, int64_t probesize,
                                   const char *format_name, const char *options, char *err, size_t errlen) {
    PrismAVInput *in = av_mallocz(sizeof *in);
    if (!in) return NULL;
    in->read = read;
    in->opaque = opaque;
    return open_input(in, 0, probesize, format_name, options, err, errlen);
}

AVFormatContext *prism_av_format(PrismAVInput *input) { return input ? input->fmt : NULL; }

void prism_av_close(PrismAVInput *in) {
    if (!in) return;
    if (in->fmt) avformat_close_input(&in->fmt);
    if (in->avio) {
        av_freep(&in->avio->buffer);
        avio_context_free(&in->avio);
    }
    av_free(in->data);
    av_free(in);
}

int prism_averror_eof(void) { return AVERROR_EOF; }
int prism_averror_eagain(void) { return AVERROR(EAGAIN); }
int64_t prism_av_nopts_value(void) { return AV_NOPTS_VALUE; }
int prism_av_time_base(void) { return AV_TIME_BASE; }

SwrContext *prism_swr_create(AVChannelLayout *in_layout, int in_fmt, int in_rate,
                             int out_channels, int out_fmt, int out_rate, int soxr, int *used_soxr) {
    AVChannelLayout out_layout;
    av_channel_layout_default(&out_layout, out_channels);
    SwrContext *swr = NULL;
    if (used_soxr) *used_soxr = 0;
    if (soxr) {
        if (swr_alloc_set_opts2(&swr, &out_layout, out_fmt, out_rate, in_layout, in_fmt, in_rate, 0, NULL) < 0) return NULL;
        if (av_opt_set_int(swr, "resampler", SWR_ENGINE_SOXR, 0) >= 0 && swr_init(swr) >= 0) {
            if (used_soxr) *used_soxr = 1;
            return swr;
        }
        // Built without libsoxr, or an input it refuses: swresample's own engine, on a new
        // context. A second swr_init on one that failed frees its buffers twice (a 64-channel
        // WAV crashed the server so; found by the media fuzz target).
        swr_free(&swr);
    }
    if (swr_alloc_set_opts2(&swr, &out_layout, out_fmt, out_rate, in_layout, in_fmt, in_rate, 0, NULL) < 0) return NULL;
    if (swr_init(swr) < 0) { swr_free(&swr); return NULL; }
    return swr;
}

int prism_sws_frame_to(struct SwsContext **ctx, const AVFrame *frame, int dst_w, int dst_h, int dst_fmt,
                       uint8_t *dst, int dst_stride) {
    // Area averaging: the right filter for large downscales, which is what frame sampling does.
    *ctx = sws_getCachedContext(*ctx, frame->width, frame->height, frame->format, dst_w, dst_h, dst_fmt,
                                SWS_AREA, NULL, NULL, NULL);
    if (!*ctx) return AVERROR(EINVAL);
    uint8_t *planes[4] = { dst, NULL, NULL, NULL };
    int strides[4] = { dst_stride, 0, 0, 0 };
    return sws_scale(*ctx, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height, planes, strides);
}

struct PrismAVOutput {
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *stream;
    AVPacket *packet;
};

void prism_av_output_free(PrismAVOutput *out) {
    if (!out) return;
    if (out->fmt && out->fmt->pb) {
        uint8_t *discard = NULL;
        avio_close_dyn_buf(out->fmt->pb, &discard);
        av_free(discard);
    }
    if (out->fmt) avformat_free_context(out->fmt);
    avcodec_free_context(&out->enc);
    av_packet_free(&out->packet);
    av_free(out);
}

PrismAVOutput *prism_av_output_open(const char *format_name, const char *codec_name, int sample_rate,
                                    int channels, int64_t bit_rate, char *err, size_t errlen) {
    const AVCodec *codec = avcodec_find_encoder_by_name(codec_name);
    if (!codec) { put_error(0, "encoder not available in this FFmpeg build", err, errlen); return NULL; }
    PrismAVOutput *out = av_mallocz(sizeof *out);
    if (!out) return NULL;
    int rc = avformat_alloc_output_context2(&out->fmt, NULL, format_name, NULL);
    if (rc < 0 || !out->fmt) { put_error(rc, "muxer", err, errlen); prism_av_output_free(out); return NULL; }
    out->enc = avcodec_alloc_context3(codec);
    out->packet = av_packet_alloc();
    if (!out->enc || !out->packet) { put_error(AVERROR(ENOMEM), "encoder", err, errlen); prism_av_output_free(out); return NULL; }
    out->enc->sample_rate = sample_rate;
    av_channel_layout_default(&out->enc->ch_layout, channels);
    // Prefer packed s16 when the encoder takes it (WAV, FLAC); otherwise its first format.
    out->enc->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_S16;
    for (const enum AVSampleFormat *f = codec->sample_fmts; f && *f != AV_SAMPLE_FMT_NONE; f++)
        if (*f == AV_SAMPLE_FMT_S16) { out->enc->sample_fmt = AV_SAMPLE_FMT_S16; break; }
    if (bit_rate > 0) out->enc->bit_rate = bit_rate;
    out->enc->time_base = (AVRational){1, sample_rate};
    if (out->fmt->oformat->flags & AVFMT_GLOBALHEADER) out->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    rc = avcodec_open2(out->enc, codec, NULL);
    if (rc < 0) { put_error(rc, "opening encoder", err, errlen); prism_av_output_free(out); return NULL; }
    out->stream = avformat_new_stream(out->fmt, NULL);
    if (!out->stream) { put_error(AVERROR(ENOMEM), "stream", err, errlen); prism_av_output_free(out); return NULL; }
    out->stream->time_base = out->enc->time_base;
    avcodec_parameters_from_context(out->stream->codecpar, out->enc);
    rc = avio_open_dyn_buf(&out->fmt->pb);
    if (rc < 0) { put_error(rc, "output buffer", err, errlen); prism_av_output_free(out); return NULL; }
    rc = avformat_write_header(out->fmt, NULL);
    if (rc < 0) { put_error(rc, "writing header", err, errlen); prism_av_output_free(out); return NULL; }
    return out;
}

AVCodecContext *prism_av_output_codec(PrismAVOutput *out) { return out->enc; }

int prism_av_output_write(PrismAVOutput *out, AVFrame *frame) {
    int rc = avcodec_send_frame(out->enc, frame);
    if (rc < 0) return rc;
    for (;;) {
        rc = avcodec_receive_packet(out->enc, out->packet);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return rc;
        av_packet_rescale_ts(out->packet, out->enc->time_base, out->stream->time_base);
        out->packet->stream_index = out->stream->index;
        rc = av_interleaved_write_frame(out->fmt, out->packet);
        if (rc < 0) return rc;
    }
}

int prism_av_output_finish(PrismAVOutput *out, uint8_t **buf, int *len) {
    int rc = prism_av_output_write(out, NULL);
    if (rc >= 0) rc = av_write_trailer(out->fmt);
    if (rc < 0) { prism_av_output_free(out); return rc; }
    *len = avio_close_dyn_buf(out->fmt->pb, buf);
    out->fmt->pb = NULL;
    prism_av_output_free(out);
    return 0;
}
