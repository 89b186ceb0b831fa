// The layer-kind table (see kinds.hpp). Sections: [A] parser.c:
// string_to_layer_type(); builders: csrc/yolo_io/layers/.
#include "yolo_io/kinds.hpp"

#include <algorithm>

#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

namespace {

constexpr unsigned P = kStoresParams;
constexpr unsigned F = kFlat;
constexpr unsigned H = kHead;
constexpr unsigned N = kNoImageOut;
constexpr unsigned G = kGridHead;
constexpr unsigned D = kDontloadscales;
constexpr unsigned T = kTrainingOnly;

// One row per kind, in the enum's order (checked below).
constexpr std::array<KindInfo, kKindCount> kKinds = {{
    {Kind::net, "net", {"[net]", "[network]"}, nullptr, 0, FuseAs::none, ""},
    {Kind::convolutional, "convolutional", {"[conv]", "[convolutional]"}, build_convolutional, P | D,
     FuseAs::conv, "ConvolutionalAttrs"},
    {Kind::deconvolutional, "deconvolutional", {"[deconv]", "[deconvolutional]"},
     build_deconvolutional, P, FuseAs::none, "DeconvolutionalAttrs"},
    {Kind::connected, "connected", {"[conn]", "[connected]"}, build_connected, P | F | D,
     FuseAs::dense, "ConnectedAttrs"},
    {Kind::local, "local", {"[local]", ""}, build_local, P, FuseAs::none, "LocalAttrs"},
    {Kind::maxpool, "maxpool", {"[max]", "[maxpool]"}, build_pool, 0, FuseAs::none, "PoolAttrs"},
    {Kind::local_avgpool, "local_avgpool", {"[local_avg]", "[local_avgpool]"}, build_pool, 0,
     FuseAs::none, "PoolAttrs"},
    {Kind::avgpool, "avgpool", {"[avg]", "[avgpool]"}, build_avgpool, 0, FuseAs::none, "AvgpoolAttrs"},
    {Kind::route, "route", {"[route]", ""}, build_route, 0, FuseAs::none, "RouteAttrs"},
    {Kind::shortcut, "shortcut", {"[shortcut]", ""}, build_shortcut, P, FuseAs::none, "ShortcutAttrs"},
    {Kind::scale_channels, "scale_channels", {"[scale_channels]", ""}, build_from_layer, 0,
     FuseAs::none, "ScaleChannelsAttrs"},
    {Kind::sam, "sam", {"[sam]", ""}, build_from_layer, 0, FuseAs::none, "SamAttrs"},
    {Kind::upsample, "upsample", {"[upsample]", ""}, build_upsample, 0, FuseAs::none, "UpsampleAttrs"},
    {Kind::reorg, "reorg", {"[reorg]", ""}, build_reorg, 0, FuseAs::none, "ReorgAttrs"},
    {Kind::reorg3d, "reorg3d", {"[reorg3d]", ""}, build_reorg, 0, FuseAs::none, "ReorgAttrs"},
    {Kind::yolo, "yolo", {"[yolo]", ""}, build_yolo, H | G, FuseAs::none, "YoloAttrs"},
    {Kind::gaussian_yolo, "Gaussian_yolo", {"[Gaussian_yolo]", ""}, build_yolo, H | G, FuseAs::none,
     "GaussianYoloAttrs"},
    {Kind::region, "region", {"[region]", ""}, build_region, H | G, FuseAs::none, "RegionAttrs"},
    {Kind::detection, "detection", {"[detection]", ""}, build_detection, H | F | N, FuseAs::none,
     "DetectionAttrs"},
    {Kind::rnn, "rnn", {"[rnn]", ""}, build_recurrent_fc, P | F, FuseAs::none, "RnnAttrs"},
    {Kind::lstm, "lstm", {"[lstm]", ""}, build_recurrent_fc, P | F, FuseAs::none, "RecurrentAttrs"},
    {Kind::gru, "gru", {"[gru]", ""}, build_recurrent_fc, P | F, FuseAs::none, "RecurrentAttrs"},
    {Kind::crnn, "crnn", {"[crnn]", ""}, build_recurrent_conv, P, FuseAs::none, "CrnnAttrs"},
    {Kind::conv_lstm, "conv_lstm", {"[conv_lstm]", ""}, build_recurrent_conv, P, FuseAs::none, "ConvLstmAttrs"},
    {Kind::batchnorm, "batchnorm", {"[batchnorm]", ""}, build_batchnorm, P, FuseAs::none, "BatchnormAttrs"},
    {Kind::dropout, "dropout", {"[dropout]", ""}, build_dropout, F, FuseAs::none, "DropoutAttrs"},
    {Kind::softmax, "softmax", {"[soft]", "[softmax]"}, build_softmax, F | N, FuseAs::none, "SoftmaxAttrs"},
    {Kind::cost, "cost", {"[cost]", ""}, build_cost, F | N | T, FuseAs::none, "CostAttrs"},
    {Kind::normalization, "normalization", {"[lrn]", "[normalization]"}, build_normalization, 0,
     FuseAs::none, "NormalizationAttrs"},
    {Kind::activation, "activation", {"[activation]", ""}, build_activation, F, FuseAs::none, "ActivationAttrs"},
    {Kind::contrastive, "contrastive", {"[contrastive]", ""}, build_contrastive, F | T,
     FuseAs::none, "ContrastiveAttrs"},
    {Kind::crop, "crop", {"[crop]", ""}, build_crop, 0, FuseAs::none, "CropAttrs"},
    {Kind::history, "history", {"[history]", ""}, build_history, 0, FuseAs::none, "HistoryAttrs"},
    {Kind::implicit, "implicit", {"[implicit]", ""}, build_implicit, P, FuseAs::none, "ImplicitAttrs"},
    {Kind::iseg, "iseg", {"[iseg]", ""}, build_iseg, 0, FuseAs::none, "IsegAttrs"},
    {Kind::empty, "empty", {"[empty]", "[silence]"}, build_passthrough, F, FuseAs::none, "EmptyAttrs"},
    {Kind::logistic, "logistic", {"[logistic]", ""}, build_passthrough, F, FuseAs::none, "EmptyAttrs"},
    {Kind::l2norm, "l2norm", {"[l2norm]", ""}, build_passthrough, F, FuseAs::none, "EmptyAttrs"},
}};

// Row i describes Kind i, with a name and a section: with the array's size
// being kKindCount, every kind has its row (a missing row would be
// value-initialised, Kind::net without a name). (The builders are not
// checked here: GCC does not compare function addresses in a constant
// expression under -fsanitize=address.)
constexpr bool kinds_rows_complete() {
    for (std::size_t k = 0; k < kKinds.size(); ++k) {
        const KindInfo& row = kKinds[k];
        if (static_cast<std::size_t>(row.kind) != k || row.name.empty() ||
            row.sections[0].empty()) {
            return false;
        }
    }
    return true;
}
static_assert(kKinds.size() == kKindCount, "one kind table row per Kind");
static_assert(kinds_rows_complete(), "kKinds: row i must describe Kind i, with a name and a "
                                     "section");
static_assert(kKinds[0].kind == Kind::net, "kinds_begin() skips row 0, [net]");

}  // namespace

const KindInfo& kind_info(Kind kind) {
    return kKinds[static_cast<std::size_t>(kind)];
}

const KindInfo* kind_of_section(std::string_view section) {
    if (section.size() < 2) return nullptr;
    for (const KindInfo& k : kKinds) {
        for (std::string_view s : k.sections) {
            // The second character first: cheap, and rejects most rows.
            if (s.size() == section.size() && s[1] == section[1] && s == section) {
                return &k;
            }
        }
    }
    return nullptr;
}

const KindInfo* kinds_begin() { return kKinds.data() + 1; }
const KindInfo* kinds_end() { return kKinds.data() + kKinds.size(); }

}  // namespace yolo_io
