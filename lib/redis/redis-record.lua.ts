import { LUA_ASCII_JSON } from '../internal/ascii-json.js';
import { AT, RECORD_ENCODING, RECORD_LENGTH } from './redis-record.layout.js';
import { V1_FIELDS } from './redis-record.v1.js';
import { DATE_SPLIT, V3_FIELDS, V3_LENGTH } from './redis-record.v3.js';

/** EPOCH_SHIFT (redis-record.layout.ts) over 10^8. */
const EPOCH_SHIFT_HIGH = 86_400_000;

const positions = (at: Record<string, number>, base: number) =>
  Object.entries(at)
    .map(([field, index]) => `${field} = ${index + base}`)
    .join(', ');

/**
 * Lua for the scripts that read or rewrite a record:
 * - `P.<field>`: the field's (1-based) position in an encoding-2 array;
 * - `NULL`: how a null value reads (`cjson.null`, which Lua counts as true: test with
 *   `present(v)`, which also covers a field appended after the record was written);
 * - `readRecord(raw)`: the stored record as an encoding-2 array, whichever encoding
 *   holds it (an encoding-1 record is converted, value by value, as the JS decoder
 *   reads it), and the encoding it was in;
 * - `writeRecord(rec, encoding)`: the array as stored text in that encoding, ASCII.
 *   Numbers are written with every digit (`cjson.encode` keeps 14, which would move a
 *   date past the year 5138, and every `expiresAt` beyond it); the one table is
 *   `scopes`, written as an array even when empty (`cjson` would write `{}`);
 * - `encodingFor(option, found)`: the encoding a write script writes a record in that
 *   it found in `found`, given the `recordEncoding` option (its ARGV text):
 *   `recordEncoding` 2 or 3 rewrites whatever they find in that encoding; 1 keeps the
 *   encoding the record has.
 * Encoding 3 (`redis-record.v3.ts`) is read into the same array: its key hash from
 * before the JSON, its owner entry derived (`entryOf`), each date from its two places,
 * every other value at its place.
 */
export const LUA_RECORD = `${LUA_ASCII_JSON}
local P = { ${positions(AT, 1)} }
local V1 = { ${positions(Object.fromEntries(V1_FIELDS.map((field, index) => [field, index])), 1)} }
local NULL = cjson.null
local function present(v) return v ~= nil and v ~= NULL end

-- An update's changes (ARGV from index from on: field, value JSON, ...) applied to a record as
-- stored now, unless expected (a version, or '') differs: then nil and the stored
-- version. Revocation is sticky (the first revokedAt stays); version + 1.
local function applyChanges(rec, expected, from)
  local version = rec[P.version]
  if expected ~= '' and tonumber(expected) ~= version then return nil, string.format('%.0f', version) end
  local revoked = present(rec[P.revokedAt])
  for i = from, #ARGV, 2 do
    local f = ARGV[i]
    if not (f == 'revokedAt' and revoked) then rec[P[f]] = cjson.decode(ARGV[i + 1]) end
  end
  rec[P.version] = version + 1
  return rec
end

-- Encoding 3's fields in order, each with whether it is a date (two places: hi, lo).
local V3 = { ${V3_FIELDS.map(([field, kind]) => `{ '${field}', ${kind === 'date' || kind === 'date?'} }`).join(', ')} }
local V3_LENGTH = ${V3_LENGTH}
local SPLIT = ${DATE_SPLIT}

-- A date as encoding 3's two places, split through its digits so every part is exact.
local function datePair(ms)
  local negative = ms < 0
  local digits = string.format('%.0f', negative and -ms or ms)
  local hi = tonumber(string.sub(digits, 1, -9)) or 0
  local lo = tonumber(string.sub(digits, -8))
  if negative then
    if lo > 0 then hi, lo = -hi - 1, SPLIT - lo else hi = -hi end
  end
  return string.format('%.0f,%.0f', hi, lo)
end

-- The owner entry of encoding 3's records, which do not store it: ownerEntry() in
-- redis-record.layout.ts, with createdAt split at 10^8 so every part stays exact.
local function entryOf(createdAt, id)
  local negative = createdAt < 0
  local digits = string.format('%.0f', negative and -createdAt or createdAt)
  local hi = tonumber(string.sub(digits, 1, -9)) or 0
  local lo = tonumber(string.sub(digits, -8))
  local H, L = ${EPOCH_SHIFT_HIGH} + hi, lo
  if negative then
    if lo > 0 then H, L = ${EPOCH_SHIFT_HIGH} - hi - 1, 100000000 - lo
    else H, L = ${EPOCH_SHIFT_HIGH} - hi, 0 end
  end
  return string.format('%09.0f%08.0f', H, L) .. ':' .. id
end

local function readV3(raw)
  local open = string.find(raw, '[', 2, true)
  if not open then error('a value this version of RedisBackend cannot read') end
  local cur = cjson.decode(string.sub(raw, open))
  local rec = { ${RECORD_ENCODING} }
  rec[P.keyHash] = string.sub(raw, 2, open - 1)
  local j = 1
  for _, f in ipairs(V3) do
    local v = cur[j]
    if f[2] then
      local lo = cur[j + 1]
      if present(v) then
        if type(v) ~= 'number' or type(lo) ~= 'number' then error('a value this version of RedisBackend cannot read') end
        v = v * SPLIT + lo
      end
      j = j + 2
    else j = j + 1 end
    if v == nil then v = NULL end
    rec[P[f[1]]] = v
  end
  -- Values a newer release appended, after this version's, kept as they are.
  for k = V3_LENGTH + 1, #cur do rec[${RECORD_LENGTH} + k - V3_LENGTH] = cur[k] end
  if type(rec[P.createdAt]) ~= 'number' or type(rec[P.id]) ~= 'string' then error('a value this version of RedisBackend cannot read') end
  rec[P.ownerEntry] = entryOf(rec[P.createdAt], rec[P.id])
  return rec
end

local function readRecord(raw)
  if string.byte(raw, 1) == 51 then return readV3(raw), 3 end
  local cur = cjson.decode(raw)
  if cur[1] == ${RECORD_ENCODING} then return cur, ${RECORD_ENCODING} end
  if type(cur[1]) ~= 'string' then error('a value this version of RedisBackend cannot read') end
  local rec = { ${RECORD_ENCODING} }
  for field, at in pairs(V1) do
    local v = cur[at]
    if v == false or v == nil then v = NULL end
    if P[field] then rec[P[field]] = v end
  end
  for _, field in ipairs({ 'createdAt', 'updatedAt', 'expiresAt', 'revokedAt', 'lastUsedAt' }) do
    if present(rec[P[field]]) then rec[P[field]] = tonumber(rec[P[field]]) end
  end
  if not present(rec[P.updatedAt]) then rec[P.updatedAt] = rec[P.createdAt] end
  rec[P.version] = present(rec[P.version]) and tonumber(rec[P.version]) or 1
  rec[P.scopes] = present(rec[P.scopes]) and cjson.decode(rec[P.scopes]) or {}
  if not present(rec[P.metadata]) then rec[P.metadata] = '{}' end
  for _, field in ipairs({ 'name', 'ownerId', 'hint' }) do
    if not present(rec[P[field]]) then rec[P[field]] = '' end
  end
  return rec, 1
end

local function listText(list)
  local items = {}
  for j, item in ipairs(list) do items[j] = cjson.encode(item) end
  return '[' .. table.concat(items, ',') .. ']'
end

local function writeV1(rec)
  local out = {}
  for field, at in pairs(V1) do
    local v = rec[P[field]]
    if v == nil or v == NULL then v = false
    elseif type(v) == 'number' then v = string.format('%.0f', v)
    elseif type(v) == 'table' then v = listText(v) end
    out[at] = v
  end
  -- A key never disabled keeps the layout releases before disabledAt read.
  if out[V1.disabledAt] == false then out[V1.disabledAt] = nil end
  return ascii(cjson.encode(out))
end

local function valueText(v)
  local t = type(v)
  if v == nil or v == NULL then return 'null'
  elseif t == 'number' then return string.format('%.0f', v)
  elseif t == 'table' then return listText(v)
  else return cjson.encode(v) end
end

local function writeV3(rec)
  local out = {}
  for _, f in ipairs(V3) do
    local v = rec[P[f[1]]]
    if not f[2] then out[#out + 1] = valueText(v)
    elseif present(v) then out[#out + 1] = datePair(v)
    else out[#out + 1] = 'null,null' end
  end
  for i = ${RECORD_LENGTH} + 1, #rec do out[#out + 1] = valueText(rec[i]) end
  return '3' .. rec[P.keyHash] .. ascii('[' .. table.concat(out, ',') .. ']')
end

local function encodingFor(option, found)
  if option == '2' then return 2 end
  if option == '3' then return 3 end
  return found
end

local function writeRecord(rec, encoding)
  if encoding == 1 then return writeV1(rec) end
  if encoding == 3 then return writeV3(rec) end
  local out = {}
  -- Past this version's fields too: a newer release may have appended some.
  for i = 1, math.max(${RECORD_LENGTH}, #rec) do
    out[i] = valueText(rec[i])
  end
  return ascii('[' .. table.concat(out, ',') .. ']')
end
`;
