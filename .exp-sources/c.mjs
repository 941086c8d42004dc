import sharp from 'sharp';
const w=400,h=300;
const raw = new Uint8Array(w*h*3).map((_, i)=>i%251);
const png = await sharp(raw,{raw:{width:w,height:h,channels:3}}).png().toBuffer();
for (const cut of [12, 4, 1]) {
  try { await sharp(png.subarray(0,png.length-cut),{failOn:'truncated'}).jpeg().toBuffer(); console.log('png -'+cut,'OK!'); } catch(e){ console.log('png -'+cut,'ERR',e.message); }
}
const tif = await sharp(raw,{raw:{width:w,height:h,channels:3}}).tiff().toBuffer();
const m = await sharp(tif).metadata(); console.log(tif.length, m.compression ?? '', m.depth, tif.readUInt32LE(4));
const tif2 = await sharp(raw,{raw:{width:w,height:h,channels:3}}).tiff({compression:'none'}).toBuffer();
console.log(tif2.length, tif2.readUInt32LE(4));
for (const frac of [0.5,0.9,0.99]) {
  const cut = tif2.subarray(0, Math.floor(tif2.length*frac));
  for (const failOn of ['truncated','error','warning']) {
  try { const out = await sharp(cut,{failOn}).raw().toBuffer(); console.log('tif',frac,failOn,'OK!', out.subarray(out.length-6)); } catch(e){ console.log('tif',frac,failOn,'ERR',e.message.split('\n')[0]); }
  }
}
