"""Post-training quantisation (ptq.py, keras_std.py): types, exact quantisation, hls4ml precision rules.

Conformance: the three hls4ml-tutorial models of Hector-Plata/hls4ml-tutorial (model_1 float, model_2
float 75 % pruned, model_3 QKeras), exported with their own hls4ml_config.yml, reproduce hls4ml 1.3.0's
C simulation (Vivado backend, io_parallel, Latency; built with g++ from the project hls4ml writes)
bit for bit. The vectors below are 8 real jets and 16 random rows (inputs on a 2^-12 grid,
x4096 = 4096 * x) and hls4ml's outputs of the last Dense layer (y1024 = 1024 * y, fixed<16,6>), generated
once with hls4ml 1.3.0 + tensorflow-cpu 2.14.1 + qkeras 0.9.0.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from fastml_export import ExportError, FixedType, Precision
from fastml_export.graph import KLayer, KModel
from fastml_export.keras2 import read_keras2
from fastml_export.ptq import (exact_type, fits, hls4ml_quantize, mini_yaml, load_yaml_or_json, parse_type,
                               quantize_mantissa, quantize_values)
from fastml_export.registry import convert
from test_keras2 import COMPILER, have_compiler, ref, run_model, to_dict

HLS4ML_VECTORS = {
  1: {
   'x4096': [
    [-489,1664,-4262,-3378,-3094,-2380,8138,6300,8138,2586,1571,-825,4341,1674,-4178,-738],
    [1265,930,-4735,-3466,-4238,-2539,750,2441,750,6973,8360,9924,6244,7649,-5046,-4895],
    [-5183,2734,5770,5739,6462,5295,506,111,506,1346,2132,3004,2261,2386,5363,7197],
    [-4362,2795,8904,9151,8399,9633,-544,935,-544,3714,4550,6606,3734,5717,7424,3985],
    [-6228,3593,9929,11343,8170,7293,-1466,-1250,-1466,2146,4322,4603,1734,1509,7202,6253],
    [-1045,1445,1704,-111,2384,706,621,959,621,3187,2779,3631,2036,1908,-428,2285],
    [2004,-2312,-1707,-1940,648,-804,6467,2190,6467,-1588,-2689,-2324,1406,584,-1140,3608],
    [-4060,2863,-1358,-2291,478,-497,4362,6492,4362,4681,3097,2337,4616,4554,-892,3608],
    [2123,5048,2030,-8007,5563,2743,-3299,3570,2240,1807,175,3359,-4525,-1001,-2962,3679],
    [244,-1797,-4804,-1580,50,-1693,7951,6185,-16657,-11606,-1074,-2594,1313,1335,13012,-6832],
    [-2320,12551,3973,4074,-3158,-10126,1029,670,-7541,-4198,-443,-5805,-604,587,219,-3111],
    [3648,5475,1971,-5027,4495,-3081,5402,-6585,5618,-123,-7672,-1929,332,1676,-6035,-6804],
    [1226,-2868,1447,4666,-10130,1563,7524,-1828,-4982,4622,1557,5504,-2121,-9104,-676,-2739],
    [4764,1190,-10020,-7343,5430,4176,-3934,-6,2738,2878,5384,1576,-583,-1590,6486,-13829],
    [-852,203,-8757,2045,-4001,5299,-772,4111,7489,2353,-5380,-9304,10773,-684,-4231,886],
    [-1176,5236,208,84,-4390,2885,-6352,4091,9363,-9368,-15153,3790,15654,-6150,-7684,3619],
    [-5165,-3109,-2139,3269,-2490,1707,-1085,-5190,-1965,-5839,40,-6905,-6715,8952,-327,-331],
    [3143,-2586,-1404,2612,1735,-7123,5120,-3628,-6489,-5533,-2400,9998,-7222,984,-13135,-10],
    [5527,-1454,-3867,1422,4302,4078,12119,1285,-3640,-774,-445,668,-184,1069,-10266,5097],
    [-3531,-7208,3918,8094,3029,990,-5728,17643,5408,-7000,-4790,534,-9552,1036,-2821,7534],
    [5911,-16658,256,-9938,6818,1033,3369,-6544,11234,12411,-6542,2291,-4137,-145,-7776,11472],
    [-5955,-1819,3081,-3979,-1470,-3463,-820,-7192,-2691,-1271,-2050,348,-1801,4628,-1986,-840],
    [-4084,-3235,-7769,3187,-7020,-4583,2207,2473,-2458,-12406,2584,1595,-8678,4733,-4308,-6919],
    [588,-1097,1245,-9866,11134,-3703,-9460,3802,-2180,1996,-2087,-367,1510,-4587,4170,-2887]],
   'y1024': [
    [976,7,-2317,-1309,-1246],
    [-1277,1444,-3377,-151,-315],
    [-97,-109,1599,-3591,-3763],
    [-1868,-1511,4051,-3380,-3824],
    [-45,-560,4171,-5920,-6256],
    [571,340,1318,-4122,-3677],
    [-586,431,-1313,-967,-929],
    [1520,-836,-2006,-1157,-1569],
    [2207,-753,1573,-7124,-6145],
    [2534,-4930,-866,-3735,-7273],
    [4197,1566,2393,-9033,-9404],
    [1999,1190,75,-9547,-8623],
    [984,-1090,-1571,-289,-647],
    [4439,-3602,-6141,-5478,-3300],
    [4342,-1333,-50,-3993,-3344],
    [3351,1571,216,-9259,-8193],
    [-1180,-1669,1392,-519,-1589],
    [3361,2522,418,-13045,-10754],
    [4336,2471,-232,-11429,-9654],
    [4151,2199,3374,-9080,-11861],
    [2985,-301,708,-7700,-6395],
    [-6030,-3948,-408,2021,511],
    [-1255,-839,-295,-1744,-1944],
    [-264,-3808,-3993,-3284,4112]],
  },
  2: {
   'x4096': [
    [-489,1664,-4262,-3378,-3094,-2380,8138,6300,8138,2586,1571,-825,4341,1674,-4178,-738],
    [1265,930,-4735,-3466,-4238,-2539,750,2441,750,6973,8360,9924,6244,7649,-5046,-4895],
    [-5183,2734,5770,5739,6462,5295,506,111,506,1346,2132,3004,2261,2386,5363,7197],
    [-4362,2795,8904,9151,8399,9633,-544,935,-544,3714,4550,6606,3734,5717,7424,3985],
    [-6228,3593,9929,11343,8170,7293,-1466,-1250,-1466,2146,4322,4603,1734,1509,7202,6253],
    [-1045,1445,1704,-111,2384,706,621,959,621,3187,2779,3631,2036,1908,-428,2285],
    [2004,-2312,-1707,-1940,648,-804,6467,2190,6467,-1588,-2689,-2324,1406,584,-1140,3608],
    [-4060,2863,-1358,-2291,478,-497,4362,6492,4362,4681,3097,2337,4616,4554,-892,3608],
    [1162,-3212,-2538,-15000,11057,7030,-1999,4754,1728,-3403,6006,-1908,-2020,-4867,2795,-609],
    [3350,-3731,779,-5482,5170,1155,2031,2522,-6210,4812,12636,-10067,-10626,-9246,5170,791],
    [6625,4439,1294,1745,-1043,5336,-6941,-2592,1493,11068,-4697,-6630,-3461,5955,-1444,8137],
    [-11505,6934,6358,-8716,944,7470,540,6142,14591,1683,-1723,-4737,3982,-1209,-1098,-647],
    [3993,-6552,-9400,-14954,7365,453,9278,-55,-4560,2936,-471,-7706,-5438,10855,2177,2558],
    [-1699,-4238,5478,-643,-4664,-824,-5564,1168,6938,-5137,8777,-4102,943,-5139,-1365,291],
    [-2671,-4319,-4165,-5045,-9647,-1616,2465,5581,3976,15098,1958,-2804,11499,-6434,5950,-5868],
    [2176,-12094,5525,-972,-5945,10312,4702,281,-4580,-266,-1007,4453,4903,-4103,-3375,-3269],
    [-8290,-3635,-568,4245,8112,-4966,3385,-2731,12750,-299,3085,-5752,-4981,1239,-2360,2171],
    [-9596,4067,-5526,10583,-1772,6742,-8571,2635,-5456,-2991,151,-1948,1624,4594,4011,-537],
    [-8377,-4944,-1203,-13036,4621,-1472,-1544,5827,4104,1358,-6152,1907,2127,-5436,6410,3120],
    [-12101,749,-7770,6982,4958,-6780,-5437,626,-1467,9371,4553,-1735,3548,-12486,1904,5323],
    [-1099,-4364,3476,12034,1259,-6885,8883,-11542,3092,-3576,5718,-5219,8134,1845,-10610,-12127],
    [-1942,7952,780,412,-1449,4534,2318,1722,-6050,7298,8375,-7996,14140,4439,-2998,-11700],
    [4036,3425,-3660,-11001,6909,-3615,-2898,17484,13074,5860,-2798,3990,-14017,655,-4668,-7899],
    [-9725,3226,549,981,5176,-5198,-7591,-10914,-2059,4670,-918,3939,-7256,-2882,-4706,-7670]],
   'y1024': [
    [-108,-455,-3023,-2101,-1957],
    [-2778,130,-5713,-1638,-1543],
    [-667,-991,1076,-4578,-4197],
    [-2767,-2691,3290,-3779,-4857],
    [-1180,-1876,2501,-6480,-7683],
    [-621,-1135,-360,-6478,-5154],
    [-1398,-415,-2347,-1695,-1469],
    [1394,-993,-2532,-1802,-1847],
    [-4025,-7796,-9390,-1560,6534],
    [4389,-1260,-1900,-829,-3049],
    [931,-1529,2478,-8747,-7245],
    [-6313,-5357,-2351,-452,-207],
    [5265,-7159,-3767,-3309,2880],
    [-7,-839,-53,-3472,-4863],
    [12300,-3469,1030,860,-3676],
    [-1551,-616,-2090,-2809,-1387],
    [750,-1894,-2113,-12457,-11765],
    [5531,-1491,1874,-1631,-2756],
    [2652,-6040,-1905,558,538],
    [5919,-2020,-2140,-5341,-1484],
    [1131,343,-7219,-13792,-18591],
    [402,670,-1647,-8757,-8567],
    [-3716,-3964,-3486,-4128,-2541],
    [-2665,-3151,-3817,-9453,-9191]],
  },
  3: {
   'x4096': [
    [-489,1664,-4262,-3378,-3094,-2380,8138,6300,8138,2586,1571,-825,4341,1674,-4178,-738],
    [1265,930,-4735,-3466,-4238,-2539,750,2441,750,6973,8360,9924,6244,7649,-5046,-4895],
    [-5183,2734,5770,5739,6462,5295,506,111,506,1346,2132,3004,2261,2386,5363,7197],
    [-4362,2795,8904,9151,8399,9633,-544,935,-544,3714,4550,6606,3734,5717,7424,3985],
    [-6228,3593,9929,11343,8170,7293,-1466,-1250,-1466,2146,4322,4603,1734,1509,7202,6253],
    [-1045,1445,1704,-111,2384,706,621,959,621,3187,2779,3631,2036,1908,-428,2285],
    [2004,-2312,-1707,-1940,648,-804,6467,2190,6467,-1588,-2689,-2324,1406,584,-1140,3608],
    [-4060,2863,-1358,-2291,478,-497,4362,6492,4362,4681,3097,2337,4616,4554,-892,3608],
    [12539,-15702,2569,-3488,-2781,-1325,-12411,-1425,-5316,20417,1387,-2167,-1728,-4104,-6483,-2401],
    [2961,-1466,5884,-1228,149,9498,3349,-3104,-1123,3321,11889,-1657,-1496,6158,-5446,-1792],
    [5422,3566,562,4117,-17376,6275,-5896,-10252,1698,4304,-2733,-6613,161,-324,8636,4592],
    [1191,6830,-1263,-5689,3588,3579,-1320,-4810,1408,-15322,4240,3019,-10069,377,-5923,4652],
    [-12498,-5619,4360,7105,-13259,-3060,2015,-3743,9773,-7319,2178,-6441,8638,-133,-2287,-10557],
    [10333,4625,4630,6991,2146,-3928,-4917,-4916,8418,-8973,-3664,-1974,1380,3535,-7674,-10629],
    [-27,7456,4651,1325,-1949,1802,-1495,5021,-4881,825,-681,3338,1380,15667,9208,9196],
    [-12531,-2091,-3739,3273,-14002,7216,6556,-8000,-6012,-4922,266,3938,12582,-1213,4716,955],
    [10813,4560,8408,-6621,-1181,-5000,9246,4041,-1875,-2780,2978,-4310,-5718,2957,15133,-1512],
    [-3415,-7196,-8202,3225,5227,56,2043,712,852,-9377,-2815,685,-4812,-2927,-5033,-2049],
    [5241,-2498,-945,4999,3961,10415,-12844,5265,-2963,828,5147,6656,6386,953,9890,-1739],
    [-866,4911,-3388,13277,6262,13367,-163,-2354,1026,4513,-3609,2333,-103,9927,-4072,6428],
    [-3956,-5902,-4364,-7313,899,6336,1010,3836,10028,1659,1199,-1690,-9881,4668,-10792,4010],
    [-88,6923,-416,-5058,2199,-3442,-1112,257,-827,-1160,-5115,-1162,-13138,-967,-7361,6883],
    [7802,-11987,890,-776,-6431,3266,-2837,-10860,-1638,-911,654,-7565,3783,4519,-7040,-4048],
    [-494,-3477,10714,1280,-6209,-4842,-353,14105,-1095,783,3158,-247,14012,-3266,4572,986]],
   'y1024': [
    [1160,554,-2131,-1268,-1289],
    [-989,1402,-2844,-312,-491],
    [203,90,2390,-3191,-3584],
    [-1933,-1651,3457,-2766,-3508],
    [-803,-1075,3253,-3095,-4138],
    [-29,-464,1177,-3409,-2400],
    [-423,120,-1261,-1091,-844],
    [2578,-480,-2086,-2055,-1937],
    [710,688,-912,-3821,-2970],
    [1603,905,376,-3843,-4308],
    [3353,1,-786,-3014,-2784],
    [704,-240,756,-3268,-2843],
    [105,-515,502,-2653,-1910],
    [905,1496,155,-3914,-3991],
    [2409,-1440,600,-2568,-2668],
    [3545,-59,-1627,-3068,-2247],
    [2237,-928,-1246,-2938,-2269],
    [-39,-736,1242,-3016,-1911],
    [1842,-585,-984,-2838,-2911],
    [1284,728,1179,-3280,-4260],
    [2142,-336,1003,-3033,-2639],
    [1005,-288,1038,-3180,-2903],
    [1033,938,-754,-3883,-3256],
    [2243,-230,-1841,-3149,-1477]],
  },
}

# ----------------------------------------------------------------------------------------------------
# types and exact quantisation
# ----------------------------------------------------------------------------------------------------

def test_parse_type_spellings():
    assert parse_type("fixed<16,6>") == FixedType(True, 16, 6)
    assert parse_type("ap_fixed<18,8,AP_RND_CONV,AP_SAT>") == FixedType(True, 18, 8, "RND_CONV", "SAT")
    assert parse_type("ufixed<6,0,RND_CONV,SAT>") == FixedType(False, 6, 0, "RND_CONV", "SAT")
    assert parse_type("ap_ufixed<8, -2>") == FixedType(False, 8, -2)
    assert parse_type("fixed<16,6,TRN,WRAP,0>") == FixedType(True, 16, 6)
    assert parse_type("int<8>") == FixedType(True, 8, 8) and parse_type("uint<1>") == FixedType(False, 1, 1)
    for bad in ("fixed<16>", "float", "fixed<16,6,RND_WEIRD>", "fixed<16,6,TRN,WRAP,3>", "fixed<0,0>", "fixed<65,1>"):
        with pytest.raises(ExportError):
            parse_type(bad)


@pytest.mark.parametrize("mode, expected", [
    ("TRN", [2, -3, 2, -3]), ("TRN_ZERO", [2, -2, 2, -2]), ("RND", [3, -2, 3, -3]), ("RND_ZERO", [2, -2, 3, -3]),
    ("RND_INF", [3, -3, 3, -3]), ("RND_MIN_INF", [2, -3, 3, -3]), ("RND_CONV", [2, -2, 3, -3]),
])
def test_rounding_modes(mode, expected):
    t = FixedType(True, 8, 8, mode, "WRAP")
    assert [quantize_mantissa(v, t) for v in (2.5, -2.5, 2.75, -2.75)] == expected


def test_overflow_modes():
    vals = [130.0, -130.0, -128.0]
    assert [quantize_mantissa(v, FixedType(True, 8, 8, "TRN", "WRAP")) for v in vals] == [-126, 126, -128]
    assert [quantize_mantissa(v, FixedType(True, 8, 8, "TRN", "SAT")) for v in vals] == [127, -128, -128]
    assert [quantize_mantissa(v, FixedType(True, 8, 8, "TRN", "SAT_ZERO")) for v in vals] == [0, 0, -128]
    assert [quantize_mantissa(v, FixedType(True, 8, 8, "TRN", "SAT_SYM")) for v in vals] == [127, -127, -128]
    assert quantize_mantissa(-3.0, FixedType(False, 4, 4, "TRN", "SAT")) == 0
    assert quantize_mantissa(17.0, FixedType(False, 4, 4, "TRN", "WRAP")) == 1


def test_hls4ml_weight_conversion_prints_decimals_first():
    # hls4ml writes a weight with F decimals before ap_fixed truncates it: a value a hair below a grid
    # point lands on it (plain truncation would give the grid point below)
    t = FixedType(True, 16, 6)  # F = 10
    v = 2.0 ** -10 - 1e-13
    assert quantize_values(np.array([v]), t)[0] == 0.0
    assert hls4ml_quantize(np.array([v]), t)[0] == 2.0 ** -10
    # overflow wraps (AP_WRAP is hls4ml's default)
    assert hls4ml_quantize(np.array([40.0], np.float32), t)[0] == 40.0 - 64.0
    # negative F: no decimals; printing rounds to an integer first
    assert hls4ml_quantize(np.array([5.6]), FixedType(True, 4, 6))[0] == 4.0


def test_exact_type_and_fits():
    assert exact_type(np.array([0.5, -1.25, 3.0])) == FixedType(True, 5, 3)
    assert exact_type(np.array([0.0, 0.0])) == FixedType(False, 1, 1)
    with pytest.raises(ExportError, match="not quantised"):
        exact_type(np.array([1e-30, 1e10], np.float32))
    assert fits(FixedType(True, 6, 1), FixedType(True, 16, 6))
    assert not fits(FixedType(True, 16, 6), FixedType(True, 6, 1))
    assert fits(FixedType(True, 16, 6), FixedType(False, 15, 5), nonneg=True)
    assert not fits(FixedType(True, 16, 6), FixedType(False, 15, 5))


# ----------------------------------------------------------------------------------------------------
# Precision: hls4ml lookup rules and config files
# ----------------------------------------------------------------------------------------------------

def test_precision_lookup_order():
    p = Precision.from_hls4ml({"HLSConfig": {
        "Model": {"Precision": "fixed<16,6>"},
        "LayerType": {"Dense": {"Precision": {"weight": "fixed<8,2>"}}},
        "LayerName": {"fc1": {"Precision": {"weight": "fixed<6,1>", "result": "auto"}},
                      "softmax": {"Precision": "fixed<18,8>"}}}})
    assert p.semantics == "hls4ml"
    assert p.lookup("fc1", "Dense", "weight") == FixedType(True, 6, 1)
    assert p.lookup("FC1", "Dense", "weight") == FixedType(True, 6, 1)  # names are case-insensitive, as hls4ml
    assert p.lookup("fc2", "Dense", "weight") == FixedType(True, 8, 2)
    assert p.lookup("fc2", "Dense", "bias") == FixedType(True, 16, 6)
    assert p.lookup("fc1", "Dense", "result") == "auto"
    assert p.lookup("softmax", "Activation", "table") == FixedType(True, 18, 8)
    assert p.lookup("fc2", "Dense", "bias", explicit_only=True) is None


def test_precision_spec():
    p = Precision.parse("fixed<18,8>; fc1.weight=fixed<8,3>; fc1_input.result=fixed<32,6,RND,SAT>; accum=fixed<24,10>")
    assert p.semantics == "framework"
    assert p.lookup("x", "Dense", "weight") == FixedType(True, 18, 8)
    assert p.lookup("fc1", "Dense", "weight") == FixedType(True, 8, 3)
    assert p.lookup("fc1", "Dense", "accum") == FixedType(True, 24, 10)
    assert p.lookup("fc1_input", "InputLayer", "result") == FixedType(True, 32, 6, "RND", "SAT")
    with pytest.raises(ExportError):
        Precision.parse("fc1.weight=fixed<8>")


def test_hls4ml_yaml_configs_read_without_pyyaml():
    path = ref("hector-plata-hls4ml-tutorial", "model_3", "hls4ml_prj", "hls4ml_config.yml")
    text = open(path).read()
    d = mini_yaml(text)
    assert d["KerasModel"] == "model_3/hls4ml_prj/keras_model.h5"  # the !keras_model tag is dropped
    assert d["HLSConfig"]["LayerName"]["relu1"]["Precision"]["result"] == "ufixed<6,0,RND_CONV,SAT>"
    assert d["HLSConfig"]["Model"]["ReuseFactor"] == 1 and d["HLSConfig"]["Model"]["TraceOutput"] is False
    assert d["InputData"] is None
    assert load_yaml_or_json(text) == d  # PyYAML (when installed) reads the same
    p = Precision.load(path)
    assert p.lookup("fc1", "QDense", "weight") == FixedType(True, 6, 1)
    assert p.lookup("relu1", "Activation", "result") == FixedType(False, 6, 0, "RND_CONV", "SAT")
    cfg = mini_yaml(open(ref("example-models", "config-files", "qkeras_3layer_config.yml")).read())
    assert cfg["HLSConfig"]["LayerName"]["softmax"]["Precision"] == "ap_fixed<16,6>"
    with pytest.raises(ExportError):
        mini_yaml("a: 1\n  b: 2\n")


# ----------------------------------------------------------------------------------------------------
# conformance with hls4ml
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", [1, 2, 3])
def test_hector_models_match_hls4ml_csim(which):
    base = ("hector-plata-hls4ml-tutorial", f"model_{which}")
    m = read_keras2(ref(*base, "KERAS_check_best_model.h5"))
    p = Precision.load(ref(*base, "hls4ml_prj", "hls4ml_config.yml"))
    model = to_dict(convert(m, precision=p))
    v = HLS4ML_VECTORS[which]
    x = np.array(v["x4096"], dtype=np.float64) / 4096
    y = np.array(v["y1024"], dtype=np.float64) / 1024
    (z,) = run_model(model, x)
    assert np.array_equal(z, y)
    assert np.argmax(z[:8], 1).tolist() == [0, 1, 2, 2, 2, 2, 1, 0]
    # rounding only the exact sums (not every product) is not hls4ml's arithmetic
    p.hls4ml_products = False
    (z2,) = run_model(to_dict(convert(read_keras2(ref(*base, "KERAS_check_best_model.h5")), precision=p)), x)
    assert not np.array_equal(z2, y)


def test_model_3_framework_vs_hls4ml_semantics():
    m = lambda: read_keras2(ref("hector-plata-hls4ml-tutorial", "model_3", "KERAS_check_best_model.h5"))
    cfg = ref("hector-plata-hls4ml-tutorial", "model_3", "hls4ml_prj", "hls4ml_config.yml")
    hls = to_dict(convert(m(), precision=Precision.load(cfg)))
    fw = Precision.load(cfg)
    fw.semantics = "framework"
    ours = to_dict(convert(m(), precision=fw))
    names = lambda d: [n["name"] for n in d["nodes"]]
    assert "fc1_accum" in names(hls) and "fc1_fanout" in names(hls)
    assert "fc1_accum" not in names(ours) and "fc1_q" in names(ours)  # explicit LayerName result only
    plain = to_dict(convert(m()))
    assert names(plain)[:4] == ["fc1_input", "fc1", "relu1", "relu1_q"]


def test_keras_3layer_pruned_variants(tmp_path):
    """KERAS_3layer with its dense / 70 % / 95 % pruned weights under fixed<16,6>: zero weights get no
    product, so the pruned models are far smaller (fastml-compile's report when the compiler exists)."""
    arch = ref("example-models", "keras", "KERAS_3layer.json")
    products, adders = {}, {}
    for tag, w in (("0", "KERAS_3layer_weights.h5"), ("70", "KERAS_3layer_70pruned_retrained_weights.h5"),
                   ("95", "KERAS_3layer_95pruned_retrained_weights.h5")):
        b = convert(read_keras2(arch, ref("example-models", "keras", w)), precision="fixed<16,6>")
        d = to_dict(b)
        assert [n["op"] for n in d["nodes"]].count("BatchNorm") == 4  # one product stage per Dense
        products[tag] = sum(n["scale"]["shape"][0] for n in d["nodes"] if n["op"] == "BatchNorm")
        p = tmp_path / f"k{tag}.json"
        b.write(str(p))
        if have_compiler():
            out = tmp_path / f"out{tag}"
            subprocess.run([COMPILER, str(p), "-o", str(out), "-q"], check=True)
            rep = json.load(open(out / "report.json"))
            adders[tag] = sum(l["adders"] for l in rep["layers"])
    assert products["95"] * 10 < products["0"] and products["70"] < products["0"]
    if adders:
        assert adders["95"] * 10 < adders["0"] and adders["70"] < adders["0"]


# ----------------------------------------------------------------------------------------------------
# float layers
# ----------------------------------------------------------------------------------------------------

def _float_model(layers, weights):
    ls = [KLayer("x", "InputLayer", "keras", {"batch_input_shape": [None, 3]}, [])]
    prev = "x"
    for name, cls, cfg in layers:
        ls.append(KLayer(name, cls, "keras", cfg, [prev], weights.get(name, {})))
        prev = name
    return KModel("t", ls, 2, "test", input_shape=(3,), extra={"outputs": [prev], "notes": []})


def test_batchnorm_is_hls4ml_float32_then_quantised():
    rng = np.random.default_rng(0)
    g, b, mu, var = (rng.random(3, dtype=np.float32) + 0.5 for _ in range(4))
    m = _float_model([("bn", "BatchNormalization", {"epsilon": 0.001})],
                     {"bn": {"gamma": g, "beta": b, "moving_mean": mu, "moving_variance": var}})
    d = to_dict(convert(m, precision="fixed<16,6>; bn.scale=fixed<12,2>; bn.bias=fixed<12,4>; bn.result=fixed<18,8>"))
    bn = [n for n in d["nodes"] if n["op"] == "BatchNorm"][0]
    scale = g / np.sqrt(var + np.float32(0.001))
    shift = b - scale * mu
    assert bn["scale"]["type"] == "fixed<12,2>" and bn["shift"]["type"] == "fixed<12,4>"
    want = hls4ml_quantize(scale, FixedType(True, 12, 2)) * 2**10
    assert np.array_equal(np.array(bn["scale"]["data"]), want)
    assert np.array_equal(np.array(bn["shift"]["data"]), hls4ml_quantize(shift, FixedType(True, 12, 4)) * 2**8)
    assert d["nodes"][2]["op"] == "Quantize" and d["nodes"][2]["type"] == "fixed<18,8,TRN,WRAP>"
    # center=False / scale=False
    m = _float_model([("bn", "BatchNormalization", {"center": False, "scale": False})],
                     {"bn": {"moving_mean": mu, "moving_variance": var}})
    convert(m, precision="fixed<16,6>")


def test_dense_relu_and_result_types():
    k = np.array([[0.5, -0.25], [0.125, 1.0], [-1.0, 0.75]], np.float32)
    m = _float_model([("d", "Dense", {"units": 2, "activation": "relu", "use_bias": True})],
                     {"d": {"kernel": k, "bias": np.array([0.5, -0.5], np.float32)}})
    p = Precision.parse("fixed<16,6>; d.accum=fixed<20,8>; d_relu.result=ufixed<8,3,RND,SAT>")
    p.hls4ml_products = False
    d = to_dict(convert(m, precision=p))
    ops = [(n["name"], n["op"], n.get("type")) for n in d["nodes"]]
    assert ops == [("x", "Input", "fixed<16,6,TRN,WRAP>"), ("d", "Dense", None),
                   ("d_accum", "Quantize", "fixed<20,8,TRN,WRAP>"), ("d_result", "Quantize", "fixed<16,6,TRN,WRAP>"),
                   ("d_relu", "ReLU", None), ("d_relu_q", "Quantize", "ufixed<8,3,RND,SAT>"), ("d_out", "Output", None)]
    # hls4ml's per-product rounding: products (10 + 10 fractional bits) are rounded to accum's 12 first;
    # only the 6 non-zero weights get a product
    p.hls4ml_products = True
    d = to_dict(convert(m, precision=p))
    by = {n["name"]: n for n in d["nodes"]}
    assert by["d_fanout"]["weight"]["shape"] == [3, 6] and by["d_mult_q"]["type"] == "fixed<20,8,TRN,WRAP>"
    assert by["d"]["inputs"] == ["d_mult_q"] and by["d"]["weight"]["shape"] == [6, 2]
    x = np.array([[0.3, -1.7, 2.2], [1e-3, 5.5, -0.25]])
    (y,) = run_model(d, x)
    xq = np.floor(x * 1024) / 1024
    kq = k.astype(np.float64)
    prods = np.floor(xq[:, :, None] * kq[None] * 4096) / 4096
    want = np.floor((prods.sum(1) + np.array([0.5, -0.5])) * 1024) / 1024
    assert np.array_equal(y, np.floor(np.maximum(want, 0) * 32 + 0.5) / 32)


@pytest.mark.parametrize("layer, message", [
    (("r", "ReLU", {"max_value": 6.0}), "max_value"),
    (("r", "ReLU", {"negative_slope": 0.1}), "negative_slope"),
    (("r", "Activation", {"activation": "tanh"}), "'tanh' is not supported"),
    (("r", "Reshape", {"target_shape": [2, 3]}), "Reshape"),  # 6 elements from 3
])
def test_float_layer_errors(layer, message):
    with pytest.raises(ExportError, match=message):
        convert(_float_model([layer], {}), precision="fixed<16,6>")


def test_softmax_only_at_the_end():
    m = _float_model([("s", "Activation", {"activation": "softmax"}), ("r", "Activation", {"activation": "relu"})], {})
    with pytest.raises(ExportError, match="last operation"):
        convert(m)
    m = _float_model([("r", "Activation", {"activation": "relu"}), ("s", "Softmax", {})], {})
    d = to_dict(convert(m))
    assert [n["op"] for n in d["nodes"]] == ["Input", "ReLU", "Output"]
    assert any("softmax dropped" in n for n in m.extra["notes"])
