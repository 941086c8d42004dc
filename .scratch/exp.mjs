import sharp from 'sharp';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const W = 9576, H = 6388;
const t = () => performance.now();
let img;
try { img = readFileSync('/tmp/hl/61.jpg'); } catch {
  const raw = Buffer.alloc(W*H*3); let x=1;
  for (let i=0;i<raw.length;i++){ x^=x<<13;x>>>=0;x^=x>>>17;x^=x<<5;x>>>=0; raw[i]= (40+((i/3|0)%W + (i/3/W|0))%160 + ((x&0xff)>>2))&255; }
  img = await sharp(raw,{raw:{width:W,height:H,channels:3}}).jpeg({quality:90}).toBuffer();
  writeFileSync('/tmp/hl/61.jpg', img);
}
console.log('bytes', img.length);
const opts = { quality: 90, mozjpeg:false, optimiseCoding:false };
let t0=t();
const d = mkdtempSync('/tmp/hl/full-');
await sharp(img,{failOn:'warning'}).jpeg(opts).tile({layout:'dz',size:510,overlap:1,container:'fs'}).toFile(join(d,'image.dz'));
console.log('full dzsave', t()-t0, d);
t0=t();
const e = mkdtempSync('/tmp/hl/home-');
await sharp(img,{failOn:'warning'}).resize(Math.ceil(W/8),Math.ceil(H/8),{fit:'fill'}).jpeg(opts).tile({layout:'dz',size:510,overlap:1,container:'fs'}).toFile(join(e,'image.dz'));
console.log('home dzsave /8', t()-t0, readdirSync(join(e,'image_files')));
t0=t();
await sharp(img,{failOn:'warning'}).resize(Math.ceil(W/4),Math.ceil(H/4),{fit:'fill'}).jpeg(opts).tile({layout:'dz',size:510,overlap:1,container:'fs'}).toFile(join(e,'image4.dz'));
console.log('home dzsave /4', t()-t0);
// deepest level tile via extract
const M = 14; const col=9, row=6;
const ts=510, ov=1;
for (const [c,r] of [[0,0],[9,6],[18,12],[3,2]]) {
  const left = Math.max(0,c*ts-ov), top=Math.max(0,r*ts-ov);
  const right = Math.min(W,(c+1)*ts+ov), bottom=Math.min(H,(r+1)*ts+ov);
  t0=t();
  const buf = await sharp(img).extract({left,top,width:right-left,height:bottom-top}).jpeg(opts).toBuffer();
  const ref = readFileSync(join(d,'image_files',String(M),`${c}_${r}.jpeg`));
  console.log('tile',c,r,'ms',t()-t0,'identical',buf.equals(ref), buf.length, ref.length);
}
console.log(readFileSync(join(d,'image.dzi'),'utf8'));
