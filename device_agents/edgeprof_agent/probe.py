"""Two tiny real models (one Dense layer, float32 and full int8) on which a runtime shows what it can do.

``hello`` loads them to find out, on this board and without trusting version numbers, whether the runtime works at
all (numpy ABI, glibc) and whether XNNPACK takes float32 and int8 graphs. Built by the LiteRT converter of
TensorFlow 2.21 (``python -m tests.helpers.agent_models --probe`` prints them anew), gzip + base64.
"""

import base64
import gzip

FLOAT32 = (
    "H4sIAAAAAAACA21Tz2sTURCeJNs0rUssuGgLOeyhV7dNjVAKUkNsIZK0pQ163C7sa1zcvNrkbbHQgwe9efTgoQcPHgr9D3pohV56"
    "FE9FPATxDxDEq+vM29k1oks+9uXb+fXNzKsAQGe1dccCGyowDRZMgYlcCQw8A3IArxHfEJc5gCvEuwIA/gCPaE3PpPYin0n8Z7Lf"
    "IuI6YiD6+4Hsur7Y8aJQaT8DcRTHcZ7PYwhfyIHguMR9/RXH9B5HBPJZpNwqkH2Nv39B/zE+30A01tcerWxuNdfX3PZKp/6g3qlj"
    "TUldJbZLbXuBdPuRVEFPuPuiPwh2JRSRHyKuEMeItwjFPjJOatnONFOPylls4mY1W9Rckf1A9yPtq6F7c3Lw6Wf3/bZBWlL9ZL/g"
    "LFSdeYDPnItiVp27RGUPRTb+k8dGvDiEe8OXt5eHzuMz+PDj9P6ri7PDp83z2a59/r12sNzCfm4gaCbtVnPTbuxK1K6E7+ieWzpu"
    "OauW4peZr7B2H/GEc/a8QALPK/W1dN0mXGNf7lXJ5PNHzJ9j3QXWRP9RcsbnmC/wLJ5zvodoQ5/TeipsU2O/mPephu8ZfG8pT4md"
    "KNzw+ipQOGHhN7wwXJofyZPXmW5qzcCqk2cc2aS8Ka49zzN+g/Fv6b3eiwSukBfO6dWda3uqHYUwOleKTfcKsptFe/MntsWzs7me"
    "xREtyb4aOs7Mv/fI5Tvxlx5j5F6aeg7J1lDmiSTnxG+xcU3p9AMAAA=="
)

INT8 = (
    "H4sIAAAAAAACA21Tz2sTQRR+abZpUkNaMNiKPQT0UFDTpvYgxoMhVltomtIGT8K6sFNd2Gw1me1JaE+e/AMUvAqeikcvQvEgnrwr"
    "nkoPgldPCq7fm32bXX9M+DIzb9/35ntv5tWIqHdr/QomqlKN5mgW8zSVsS+ShTXBRvQUOAFe54iOAMsiymOPJbx5TBoWcyaxKwvv"
    "KjAFDNVgzwvu267acUJfGx5C0IsoisZkPQ64Khgqicu2419RxPME4AUPQ203iP2X5fsX8MdlfRpodzfurGxtr3U37M5Kr3Wz1WtB"
    "U6yrKH6Jb98L7EEYaK+v7D01GHq7ARVg/wAcAa+AZ4AWThDFWu5JfkWqjOJyDeZNHQrGVhAO5/Etz/5JXS3DDd6+Wz2v3z/hXJL8"
    "mbNUX2rUF4k+y1kct1FvLLMtGRzd+s9ZrKOw/4k+Pj/cfwz+AcC176yvbdXauwFy1MqtG01Vw6+MVHGcitj53lzgAeBL7L7jBST5"
    "JNyq0VemUxkuy5iWtWV+MYdzzIt+3kNalNhzYufv87m45sz7gbvnz7P4qwHX0xilTeFG8n5O4JvcA8e7nDnre/dr8yzmbe1otRP6"
    "m85Aexq3rdy24/vXFjM6xgzrjOmDGalMPCZgjUNybjdGvrEWN4rPn0vt/wy2vzw+bN6++LM5Y3riUajw/Bx/wTz7hY6jO6FP2TfB"
    "Wrgrz426ku851cK1uQSspnUs3c3UxjJvNeFZ8m7TOvEbSe7izYUDU6e/etWWvvujTlam98v4n8rEL420U+k38sgDhGAEAAA="
)


def model(name):
    return gzip.decompress(base64.b64decode("".join(FLOAT32 if name == "float32" else INT8)))
