import sharp from 'sharp';
const w=400,h=300;
// 16-bit RGB gradient
const raw16 = new Uint16Array(w*h*3);
for (let i=0;i<w*h;i++){ raw16[i*3]=40000; raw16[i*3+1]=20000; raw16[i*3+2]=(i%w)*160; }
const png16 = await sharp(raw16,{raw:{width:w,height:h,channels:3}}).toColourspace('rgb16').png().toBuffer();
console.log('png16 meta', await sharp(png16).metadata().then(m=>[m.depth,m.space,m.channels]));
const j1 = await sharp(png16).jpeg({quality:90}).toBuffer();
console.log('default', (await sharp(j1).stats()).channels.map(c=>c.mean.toFixed(1)));
const j2 = await sharp(png16).toColourspace('srgb').jpeg({quality:90}).toBuffer();
console.log('srgb', (await sharp(j2).stats()).channels.map(c=>c.mean.toFixed(1)));
const tif16 = await sharp(raw16,{raw:{width:w,height:h,channels:3}}).toColourspace('rgb16').tiff().toBuffer();
console.log('tif16 meta', await sharp(tif16).metadata().then(m=>[m.depth,m.space,m.channels]));
console.log('tif default', (await sharp(await sharp(tif16).jpeg().toBuffer()).stats()).channels.map(c=>c.mean.toFixed(1)));
// grey16
const g16 = new Uint16Array(w*h).fill(30000);
const tifg = await sharp(g16,{raw:{width:w,height:h,channels:1}}).toColourspace('grey16').tiff().toBuffer();
console.log('tifg meta', await sharp(tifg).metadata().then(m=>[m.depth,m.space,m.channels]));
const jg = await sharp(tifg).jpeg().toBuffer();
console.log('grey default', (await sharp(jg).metadata()).channels, (await sharp(jg).stats()).channels.map(c=>c.mean.toFixed(1)));
const jg2 = await sharp(tifg).toColourspace('b-w').jpeg().toBuffer();
console.log('grey b-w', (await sharp(jg2).metadata()).channels, (await sharp(jg2).stats()).channels.map(c=>c.mean.toFixed(1)));
// truncated
for (const [name,buf] of [['png',png16],['tif',tif16],['jpg',j1]]) {
  const cut = buf.subarray(0, Math.floor(buf.length*0.6));
  for (const failOn of ['none','truncated','error','warning']) {
    try { await sharp(cut,{failOn}).jpeg().toBuffer(); console.log(name,failOn,'OK!'); } catch(e){ console.log(name,failOn,'ERR',e.message.split('\n')[0]); }
  }
}
// TIFF truncated at various points
for (const frac of [0.1,0.3,0.5,0.9,0.99]) {
  const cut = tif16.subarray(0, Math.floor(tif16.length*frac));
  try { await sharp(cut,{failOn:'truncated'}).jpeg().toBuffer(); console.log('tif',frac,'OK!'); } catch(e){ console.log('tif',frac,'ERR',e.message.split('\n')[0]); }
}
console.log('tif16 header', tif16.subarray(0,8));
