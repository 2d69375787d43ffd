const NON_ASCII = /[\u0080-\uffff]/;
const NON_ASCII_ALL = /[\u0080-\uffff]/g;
const escapeCodeUnit = (unit: string): string => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * JSON text with every non-ASCII character as a `\uXXXX` escape (a pair for characters
 * beyond U+FFFF). Why: Node decodes a reply with any non-ASCII byte into a two-byte
 * string, which V8 decodes and parses at about twice the cost, and every key's `hint`
 * holds an ellipsis. `RedisBackend`'s records and `RedisCacheBackend`'s entries are
 * written with it; the scripts escape what they write the same way (`LUA_ASCII_JSON`).
 */
export function asciiJson(json: string): string {
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_ALL, escapeCodeUnit) : json;
}

/**
 * Lua for the scripts: `ascii(json)`, the JSON text `cjson.encode` made with each UTF-8
 * sequence as a `\uXXXX` escape, as {@link asciiJson} does (the scripts only ever hold
 * well-formed UTF-8: what the codec wrote, decoded by `cjson`).
 */
export const LUA_ASCII_JSON = `
local function ascii(json)
  return (string.gsub(json, '[\\194-\\244][\\128-\\191]+', function(seq)
    local b1, b2, b3, b4 = string.byte(seq, 1, 4)
    local cp
    if b1 < 224 then cp = (b1 - 192) * 64 + (b2 - 128)
    elseif b1 < 240 then cp = ((b1 - 224) * 64 + (b2 - 128)) * 64 + (b3 - 128)
    else cp = (((b1 - 240) * 64 + (b2 - 128)) * 64 + (b3 - 128)) * 64 + (b4 - 128) end
    if cp < 65536 then return string.format('\\\\u%04x', cp) end
    cp = cp - 65536
    return string.format('\\\\u%04x\\\\u%04x', 55296 + math.floor(cp / 1024), 56320 + cp % 1024)
  end))
end
`;
