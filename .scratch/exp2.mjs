import sharp from 'sharp';
import { readFileSync } from 'node:fs';
const img = readFileSync('/tmp/hl/61.jpg');
const W = 9576, H = 6388;
const t = () => performance.now();
for (let i=0;i<3;i++){
let t0=t(); await sharp(img,{failOn:'warning'}).resize(Math.ceil(W/8),Math.ceil(H/8),{fit:'fill'}).raw().toBuffer(); const a=t()-t0;
t0=t(); await sharp(img,{failOn:'warning'}).resize(Math.ceil(W/4),Math.ceil(H/4),{fit:'fill'}).raw().toBuffer(); const b=t()-t0;
t0=t(); await sharp(img,{failOn:'warning'}).raw().toBuffer(); const c=t()-t0;
console.log({s8:a|0,s4:b|0,full:c|0});
}
console.log(sharp.concurrency(), process.env.UV_THREADPOOL_SIZE);
